"""What a visitor reads when a field fails the contract's rules (validation.py): one plain sentence
per rule, keyed by the field or by `<field>_<rule>`, and the lengths they name."""

NAME_MAX = 120
MESSAGE_MAX = 5000
EMAIL_MAX = 254

MESSAGES = {
    "name": "Enter your name.",
    "name_long": f"Enter your name in at most {NAME_MAX} characters.",
    "name_control": "Enter your name without special control characters.",
    "name_format": (
        "Enter your name without invisible formatting characters, such as right-to-left marks:"
        " type it rather than paste it."
    ),
    "name_header": 'Enter your name without the characters "=?", which email reads as a code.',
    "email": "Enter an email address like name@example.com.",
    "email_long": f"Enter an email address of at most {EMAIL_MAX} characters.",
    "email_ascii": "Enter an email address without accents or symbols before the @, like name@example.com.",
    "email_header": 'Enter an email address without the characters "=?", which email reads as a code.',
    "phone": "Enter a phone number like 01632 960123 or +44 1632 960123, or leave it blank.",
    "message": "Enter your message.",
    "message_control": (
        "Remove the special control characters (such as escape codes) from your message:"
        " line breaks and tabs are fine."
    ),
    "message_long": f"Shorten your message to at most {MESSAGE_MAX:,} characters.",
    "consent": "Tick the box to agree that we may use your details to reply to your enquiry.",
    "not_text": "Enter this as text.",
    "repeated": "Send this field only once.",
    "file": "Files cannot be sent with this form: remove the attachment.",
    "unknown": "This form has no field with this name: remove it.",
    "captcha": "Complete the check that you are not a robot.",
}
