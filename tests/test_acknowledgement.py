"""The acknowledgement email to the enquirer, through the notifier's real handler against moto.

On and off; nothing the visitor typed in it, field by field; one per address a day and a daily cap;
a refusal by SES (the sandbox) that leaves the clinic's email untouched; exactly once under a retried
batch; never a failed record, never a Lambda timeout.
"""

from __future__ import annotations

import copy
import email
import email.policy
import hashlib
import hmac
import io
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import EmailMessage
from typing import Any

import boto3
import botocore.client
import pytest
from botocore.exceptions import ClientError
from botocore.stub import Stubber
from moto.core.models import DEFAULT_ACCOUNT_ID
from moto.ses.models import ses_backends
from support import (
    EVENTS,
    GUARD_TABLE_NAME,
    REGION,
    SECRET_VALUE,
    TABLE_NAME,
    FakeContext,
    MadeNotifier,
    MakeNotifier,
    log_records,
    stored_items,
    with_json_body,
)
from test_turnstile import TURNSTILE_KEY, Siteverify
from test_turnstile import siteverify as siteverify  # the fixture, used by its name

from emulator.template_tables import load_template
from enquiries.notify.acknowledgement import (
    ACKNOWLEDGEMENT_MAX_SECONDS,
    ACKNOWLEDGEMENT_START_MIN_MILLIS,
    HASH_PREFIX,
    RetargetableMailer,
    normalised_address,
)
from enquiries.notify.budget import RECORD_START_MIN_MILLIS
from enquiries.notify.mail_settings import MailSettings
from enquiries.notify.mailer import SesMailer, sesv2_client
from enquiries.settings import SettingsError

CLINIC = "Front desk <frontdesk@clinic.example>, therapists@clinic.example"
SENDER = "Clinic website <enquiries@clinic.example>"
CLINIC_NAME = "Riverside Osteopathy"
CLINIC_PHONE = "01632 960123"
NOW = datetime.now(UTC).replace(microsecond=0).timestamp()
DAY = 24 * 3600


# --- enquiries, stream records and what SES received ---------------------------------------------


def iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def an_enquiry(number: int, *, created: float = NOW, **fields: Any) -> dict[str, Any]:
    item: dict[str, Any] = {
        "id": f"01KAPX4Q7N3Y8Z2M5R6T9V{number:04d}",
        "name": "Jane Doe",
        "email": f"patient{number}@example.com",
        "message": "My lower back has been stiff since a half marathon.",
        "consent": True,
        "created_at": iso(created),
        "expires_at": int(created) + 365 * DAY,
    }
    item.update(fields)
    return item


def stored(dynamodb: Any, *items: dict[str, Any]) -> dict[str, Any]:
    """Store the items, as the submission function does, and return the stream event of their INSERTs."""
    from boto3.dynamodb.types import TypeSerializer

    serializer = TypeSerializer()
    template = json.loads((EVENTS / "stream-insert.json").read_text())["Records"][0]
    records = []
    for sequence, item in enumerate(items, start=1):
        image = {key: serializer.serialize(value) for key, value in item.items()}
        dynamodb.put_item(TableName=TABLE_NAME, Item=image)
        record = copy.deepcopy(template)
        record["dynamodb"].update(
            Keys={"id": image["id"]}, NewImage=image, SequenceNumber=f"2000000000000000000{sequence:02d}"
        )
        records.append(record)
    return {"Records": records}


def sent() -> list[EmailMessage]:
    """Every email moto's SES took, in order."""
    backend = ses_backends[DEFAULT_ACCOUNT_ID][REGION]
    return [
        email.message_from_string(message.raw_data, policy=email.policy.default)
        for message in backend.sent_messages
    ]


def to_addresses(message: EmailMessage) -> list[str]:
    return [address.addr_spec for address in message["To"].addresses]


def acknowledgements() -> list[EmailMessage]:
    return [message for message in sent() if message["Subject"].startswith("Your enquiry to")]


def item(dynamodb: Any, enquiry_id: str) -> dict[str, Any]:
    return next(found for found in stored_items(dynamodb) if found["id"] == enquiry_id)


def guard_records(dynamodb: Any) -> list[dict[str, Any]]:
    """The guard table's records the acknowledgement wrote (not the day's count of clinic emails)."""
    from enquiries.notify.notification_cap import DAY_PREFIX

    items = dynamodb.scan(TableName=GUARD_TABLE_NAME)["Items"]
    return [item for item in items if not item["id"]["S"].startswith(DAY_PREFIX)]


def emitted(printed: str, name: str) -> list[float]:
    """Every value of metric `name` in the embedded metric format lines of `printed` (standard output)."""
    values: list[float] = []
    for line in printed.splitlines():
        if '"_aws"' in line and name in (document := json.loads(line)):
            value = document[name]
            values += value if isinstance(value, list) else [value]
    return values


# --- the notifier, acknowledging ----------------------------------------------------------------


@dataclass
class Clock:
    """The notifier's wall clock (epoch seconds), which the test moves."""

    now: float = NOW

    def __call__(self) -> float:
        return self.now


@dataclass
class Notifier:
    made: MadeNotifier
    clock: Clock
    # A fresh invocation of the notifier, whose timeout is 120 s.
    context: FakeContext = field(
        default_factory=lambda: FakeContext(function_name="NotifyEnquiryFunction", remaining_millis=120_000)
    )

    def __call__(self, event: dict[str, Any]) -> Any:
        return self.made.lambda_handler(event, self.context)

    @property
    def acknowledger(self) -> Any:
        """The acknowledger the notifier's init made, or None."""
        return self.made.parts.acknowledger


@pytest.fixture
def notifier_with(
    dynamodb: Any, monkeypatch: pytest.MonkeyPatch, make_notifier: MakeNotifier
) -> Callable[..., Notifier]:
    """The notifier, made with these settings (acknowledgements on unless told otherwise), on a clock
    the test moves, and with this mailer if given."""
    monkeypatch.setenv("CLINIC_EMAIL", CLINIC)
    monkeypatch.setenv("SENDER_EMAIL", SENDER)
    boto3.client("ses", region_name=REGION).verify_email_identity(EmailAddress="enquiries@clinic.example")

    def load(
        mailer_for: Callable[[MailSettings], RetargetableMailer] | None = None, **settings: str
    ) -> Notifier:
        for name, value in {
            "ACKNOWLEDGE_ENQUIRER": "true",
            "CLINIC_NAME": CLINIC_NAME,
            "CLINIC_PHONE": CLINIC_PHONE,
            **settings,
        }.items():
            monkeypatch.setenv(name, value)
        clock = Clock()
        return Notifier(make_notifier(mailer_for=mailer_for, clock=clock), clock)

    return load


@pytest.fixture
def notifier(notifier_with: Callable[..., Notifier]) -> Notifier:
    return notifier_with()


# --- on and off ------------------------------------------------------------------------------------


def test_acknowledgement_off_by_default_changes_nothing(
    notifier_with: Callable[..., Notifier], dynamodb: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a deployment that never set ACKNOWLEDGE_ENQUIRER
    monkeypatch.delenv("ACKNOWLEDGE_ENQUIRER", raising=False)
    notify = notifier_with(ACKNOWLEDGE_ENQUIRER="")
    event = stored(dynamodb, an_enquiry(1))

    # When an enquiry is notified
    result = notify(event)

    # Then the clinic gets its one email, and nothing else is sent, read or written
    assert notify.acknowledger is None
    assert result == {"batchItemFailures": []}
    assert [to_addresses(message) for message in sent()] == [
        ["frontdesk@clinic.example", "therapists@clinic.example"]
    ]
    assert "acknowledgement" not in item(dynamodb, an_enquiry(1)["id"])
    assert guard_records(dynamodb) == []


def test_acknowledgement_on_one_enquiry_gives_the_clinics_email_and_the_patients(
    notifier: Notifier, dynamodb: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given acknowledgements on, and a stored enquiry
    enquiry = an_enquiry(1, email="Jane.Doe@Example.com")
    event = stored(dynamodb, enquiry)

    # When it is notified
    result = notifier(event)

    # Then the clinic's email comes first, then the enquirer's: To the address alone, From the
    # sender, Reply-To the clinic, a subject naming the clinic, the fixed text in both parts
    assert result == {"batchItemFailures": []}
    clinic, patient = sent()
    assert clinic["Subject"] == "New enquiry from Jane Doe"
    assert [(a.display_name, a.addr_spec) for a in patient["To"].addresses] == [("", "Jane.Doe@Example.com")]
    assert str(patient["From"]) == SENDER
    assert [a.addr_spec for a in patient["Reply-To"].addresses] == [
        "frontdesk@clinic.example",
        "therapists@clinic.example",
    ]
    assert patient["Subject"] == f"Your enquiry to {CLINIC_NAME} has been received"
    assert patient["Auto-Submitted"] == "auto-generated"
    text = patient.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    html = patient.get_body(("html",)).get_content()  # type: ignore[union-attr]
    for part in (text, html):
        assert "We have received your enquiry" in part
        assert "we usually reply within two working days" in part
        assert CLINIC_PHONE in part
        assert "This form is not for emergencies: in an emergency call 999, or 111 for urgent advice." in part
    assert 'href="tel:+441632960123"' in html
    # And the enquiry records it, once
    marked = item(dynamodb, enquiry["id"])
    assert marked["acknowledgement"] == "sent"
    assert marked["acknowledged_at"].endswith("Z")
    assert marked["ack_message_id"]
    # And it counts as sent, and as 0 in the share not sent that the failure-rate alarm averages
    printed = capsys.readouterr().out
    assert emitted(printed, "AcknowledgementSent") == [1]
    assert emitted(printed, "AcknowledgementFailed") == [0]


def test_acknowledgement_wording_is_the_deployments_own(
    notifier_with: Callable[..., Notifier], dynamodb: Any
) -> None:
    # Given a clinic outside the UK, with its own emergency sentence and reply time, and no phone
    notify = notifier_with(
        CLINIC_NAME="Praxis Müller",
        CLINIC_PHONE="",
        ACKNOWLEDGEMENT_REPLY_WITHIN="one working day",
        ACKNOWLEDGEMENT_EMERGENCY_NOTE="In an emergency, call 112.",
    )
    event = stored(dynamodb, an_enquiry(1))

    # When an enquiry is acknowledged
    notify(event)

    # Then the acknowledgement says what the settings say, and offers no phone
    [patient] = acknowledgements()
    assert patient["Subject"] == "Your enquiry to Praxis Müller has been received"
    text = patient.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert "we usually reply within one working day." in text
    assert "In an emergency, call 112." in text
    assert "999" not in text
    assert "speak to us" not in text


# --- which configuration set each email is sent with ----------------------------------------------


@pytest.fixture
def ses_sends(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """The parameters of every SES v2 SendEmail call botocore makes while the test runs (moto answers)."""
    sends: list[dict[str, Any]] = []
    original = botocore.client.BaseClient._make_api_call

    def record(client: Any, operation_name: str, api_params: dict[str, Any]) -> Any:
        if (client.meta.service_model.service_name, operation_name) == ("sesv2", "SendEmail"):
            sends.append(dict(api_params))
        return original(client, operation_name, api_params)

    monkeypatch.setattr(botocore.client.BaseClient, "_make_api_call", record)
    return sends


@pytest.mark.parametrize(
    ("configuration_sets", "clinics", "enquirers"),
    [
        # As deployed with the stack's own sets: the clinic's never suppresses, the other does
        (
            {
                "SES_CONFIGURATION_SET": "stack-acknowledgements",
                "NOTIFICATION_SES_CONFIGURATION_SET": "stack-clinic",
            },
            "stack-clinic",
            "stack-acknowledgements",
        ),
        # As deployed with the operator's own set (SesConfigurationSet): both emails use it
        ({"SES_CONFIGURATION_SET": "operators-set"}, "operators-set", "operators-set"),
        # As the local server runs by default: none
        ({}, None, None),
    ],
    ids=["stack's own", "operator's own", "none"],
)
def test_acknowledgement_configuration_set_suppresses_strangers_and_the_clinics_never_suppresses_the_clinic(
    notifier_with: Callable[..., Notifier],
    dynamodb: Any,
    ses_sends: list[dict[str, Any]],
    configuration_sets: dict[str, str],
    clinics: str | None,
    enquirers: str | None,
) -> None:
    # Given the notifier with these configuration sets, and a stored enquiry
    notify = notifier_with(**configuration_sets)
    event = stored(dynamodb, an_enquiry(1))

    # When it is notified
    result = notify(event)

    # Then the clinic's email names the clinic's set, so that one bounce of the clinic's mailbox or one
    # enquiry marked as spam never makes SES drop its later emails unseen; the acknowledgement names
    # the set that suppresses the strangers' addresses that bounce or complain
    assert result == {"batchItemFailures": []}
    assert [(send["Destination"]["ToAddresses"], send.get("ConfigurationSetName")) for send in ses_sends] == [
        (["frontdesk@clinic.example", "therapists@clinic.example"], clinics),
        (["patient1@example.com"], enquirers),
    ]


# --- nothing the visitor typed ----------------------------------------------------------------------

# A distinctive value in each field a visitor fills in, as the table stores it, and the strings that
# must not appear anywhere in the acknowledgement but its To header.
DISTINCT = {
    "name": ("Zebulon Quagmire-Vex", ["zebulon", "quagmire"]),
    "email": ("zorblax.quincunx@example.org", ["zorblax", "quincunx"]),
    "phone": ("+447700900461", ["900461", "7700900461", "7700 900461"]),
    "service": ("Xylophone Therapy", ["xylophone"]),
    "message": (
        "Cheap pills at https://spam.example/zqv and call 0800 111 222",
        ["cheap pills", "spam.example"],
    ),
}


def _visible_everywhere_but_to(raw: bytes) -> list[str]:
    """Every place in a raw message where text shows: each header but To, decoded and as sent, and
    each part as sent and decoded (quoted-printable would hide a string across a soft line break)."""
    message = email.message_from_bytes(raw, policy=email.policy.default)
    places = [f"{name}: {value}" for name, value in message.items() if name.lower() != "to"]
    head = raw.split(b"\r\n\r\n", 1)[0].decode("ascii")
    places += [
        line for line in head.replace("\r\n ", " ").split("\r\n") if not line.lower().startswith("to:")
    ]
    for part in message.walk():
        if part.is_multipart():
            continue
        places.append(str(part.get_content()))
        places.append(part.as_string())
    places.append(raw.split(b"\r\n\r\n", 1)[1].decode("ascii"))
    return places


@pytest.mark.parametrize("field_name", sorted(DISTINCT))
def test_acknowledgement_holds_nothing_the_visitor_typed(
    notifier_with: Callable[..., Notifier], dynamodb: Any, field_name: str
) -> None:
    # Given an enquiry with distinctive text in this field (a bot's advert, a stranger's name)
    value, needles = DISTINCT[field_name]
    notify = notifier_with(SERVICES="Osteopathy,Xylophone Therapy")
    enquiry = {**an_enquiry(1), field_name: value}
    event = stored(dynamodb, enquiry)
    raw_sends: list[bytes] = []
    sesv2_client().meta.events.register(
        "provide-client-params.sesv2.SendEmail",
        lambda params, **_: raw_sends.append(params["Content"]["Raw"]["Data"]),
    )

    # When it is notified and acknowledged
    notify(event)

    # Then the clinic's email has the text, and the acknowledgement has none of it anywhere, in any
    # letter case: not in a header but To (the bare address), not in either part, as sent or decoded
    clinic_raw, patient_raw = raw_sends
    clinic = email.message_from_bytes(clinic_raw, policy=email.policy.default)
    assert needles[0] in clinic.get_body(("plain",)).get_content().lower()  # type: ignore[union-attr]
    patient = email.message_from_bytes(patient_raw, policy=email.policy.default)
    assert [(a.display_name, a.addr_spec) for a in patient["To"].addresses] == [("", enquiry["email"])]
    for place in _visible_everywhere_but_to(patient_raw):
        for needle in needles:
            assert needle not in place.lower(), (field_name, needle, place[:200])


# --- limits ---------------------------------------------------------------------------------------


def test_acknowledgement_at_most_one_per_address_in_24_hours(notifier: Notifier, dynamodb: Any) -> None:
    # Given an enquiry acknowledged, and a second from the same address, written otherwise
    notifier(stored(dynamodb, an_enquiry(1, email="jane.doe@example.com")))
    notifier.clock.now += 23 * 3600
    second = an_enquiry(2, email="Jane.Doe+clinic@EXAMPLE.com", created=notifier.clock.now)

    # When the second is notified within the day
    notifier(stored(dynamodb, second))

    # Then three emails in all: both to the clinic, one to the patient; the second records why
    assert len(sent()) == 3
    assert [to_addresses(message) for message in acknowledgements()] == [["jane.doe@example.com"]]
    assert item(dynamodb, second["id"])["acknowledgement"] == "address_limit"

    # And a day after the first, the address may have one again
    notifier.clock.now += 3600
    third = an_enquiry(3, email="jane.doe@example.com", created=notifier.clock.now)
    notifier(stored(dynamodb, third))
    assert len(acknowledgements()) == 2
    assert item(dynamodb, third["id"])["acknowledgement"] == "sent"


@pytest.mark.parametrize(
    "spellings",
    [
        ["victim@gmail.com", "v.ictim@gmail.com", "vic.tim@gmail.com", "victim@googlemail.com"],
        ["Victim+x@GMAIL.com", "V.I.C.T.I.M@GoogleMail.com"],
        ["x-1@yahoo.com", "x-2@yahoo.com", "X-shop@Yahoo.com"],
        ["jane+a@outlook.com", "Jane+b@Outlook.com", "jane@outlook.com"],
        ["jane+a@icloud.com", "jane@icloud.com"],
        ["jane+news@fastmail.com", "news@jane.fastmail.com", "jane@fastmail.com"],
        ["bob@straße.de", "bob@xn--strae-oqa.de", "BOB@STRAẞE.de"],
        ["bob@ｅｘａｍｐｌｅ.com", "bob@EXAMPLE.com"],
    ],
)
def test_acknowledgement_address_spellings_of_one_mailbox_have_one_key(spellings: list[str]) -> None:
    # Given spellings of one mailbox, by the rules its provider documents
    # When the limit normalises them
    keys = {normalised_address(spelling) for spelling in spellings}

    # Then they count as one address
    assert len(keys) == 1, keys


@pytest.mark.parametrize(
    "different",
    [
        ["bob@straße.de", "bob@strasse.de"],
        ["jane.doe@example.com", "janedoe@example.com"],
        ["x-1@example.com", "x-2@example.com"],
        ["victim@gmail.com", "victim@gmail.co"],
    ],
)
def test_acknowledgement_address_different_mailboxes_keep_different_keys(different: list[str]) -> None:
    # Given addresses of different mailboxes (two domains, or a provider with no such alias rule)
    # When the limit normalises them
    keys = {normalised_address(address) for address in different}

    # Then none is merged with another
    assert len(keys) == len(different), keys


def test_acknowledgement_one_per_gmail_mailbox_however_it_is_spelt(notifier: Notifier, dynamodb: Any) -> None:
    # Given enquiries from four spellings of one Gmail mailbox, within a day
    spellings = ["victim@gmail.com", "v.ictim@gmail.com", "vic.tim@gmail.com", "victim@googlemail.com"]
    enquiries = [an_enquiry(n, email=address) for n, address in enumerate(spellings, start=1)]

    # When they are notified
    notifier(stored(dynamodb, *enquiries))

    # Then the clinic gets four emails, and the mailbox one acknowledgement
    assert len(sent()) == 5
    assert [to_addresses(message) for message in acknowledgements()] == [["victim@gmail.com"]]
    assert [item(dynamodb, e["id"])["acknowledgement"] for e in enquiries[1:]] == ["address_limit"] * 3


def test_acknowledgement_address_is_kept_only_as_a_keyed_hash(notifier: Notifier, dynamodb: Any) -> None:
    # Given an acknowledged enquiry
    notifier(stored(dynamodb, an_enquiry(1, email="Jane.Doe+osteo@Example.com")))

    # When the guard table's records are read
    ids = sorted(record["id"]["S"] for record in guard_records(dynamodb))

    # Then the address is there only as an HMAC of its normalised form, keyed with the stack's
    # secret: not in the clear, and not as a plain SHA-256, which a list of addresses would reverse
    day = datetime.fromtimestamp(NOW, UTC).strftime("%Y-%m-%d")
    keyed = hmac.new(
        SECRET_VALUE.encode(), (HASH_PREFIX + "jane.doe@example.com").encode(), hashlib.sha256
    ).hexdigest()
    assert normalised_address("Jane.Doe+osteo@Example.com") == "jane.doe@example.com"
    assert ids == [f"ack#{keyed}", f"ack-day#{day}"]
    plain = hashlib.sha256(b"jane.doe@example.com").hexdigest()
    assert not any("jane" in record_id or plain in record_id for record_id in ids)


def test_acknowledgement_daily_cap_stops_them_and_fires_its_alarm_until_the_next_day(
    notifier_with: Callable[..., Notifier], dynamodb: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a cap of two a day, and three enquiries from three addresses
    notify = notifier_with(ACKNOWLEDGEMENT_DAILY_CAP="2")
    enquiries = [an_enquiry(number) for number in (1, 2, 3)]
    capsys.readouterr()

    # When they are notified
    notify(stored(dynamodb, *enquiries))

    # Then the clinic gets three emails and two patients theirs; the third is held back by the cap,
    # which the metric behind the alarm counts (0 for each sent, 1 for the one held back)
    assert len(sent()) == 5
    assert [to_addresses(message) for message in acknowledgements()] == [
        ["patient1@example.com"],
        ["patient2@example.com"],
    ]
    assert item(dynamodb, enquiries[2]["id"])["acknowledgement"] == "daily_cap"
    assert emitted(capsys.readouterr().out, "AcknowledgementCapped") == [0, 0, 1]

    # And on the next day (UTC) they go out again, and the alarm's metric drops back to 0
    notify.clock.now += DAY
    tomorrow = an_enquiry(4, created=notify.clock.now)
    notify(stored(dynamodb, tomorrow))
    assert item(dynamodb, tomorrow["id"])["acknowledgement"] == "sent"
    assert emitted(capsys.readouterr().out, "AcknowledgementCapped") == [0]


def test_acknowledgement_none_for_an_enquiry_stored_over_a_day_ago(notifier: Notifier, dynamodb: Any) -> None:
    # Given an old enquiry put back into the table (as README's re-sending steps do), never acknowledged
    old = an_enquiry(1, created=NOW - 2 * DAY)

    # When the notifier sees its INSERT
    notifier(stored(dynamodb, old))

    # Then the clinic is emailed, and the enquirer is not told of an enquiry from days ago
    assert len(sent()) == 1
    assert "acknowledgement" not in item(dynamodb, old["id"])
    assert guard_records(dynamodb) == []


# --- failures are the acknowledgement's own --------------------------------------------------------


def test_acknowledgement_refused_in_the_sandbox_leaves_the_clinics_email_untouched(
    notifier_with: Callable[..., Notifier],
    dynamodb: Any,
    log_output: io.StringIO,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Given SES in the sandbox: it takes the clinic's email (a verified address) and refuses the
    # enquirer's, which is not verified
    client = boto3.client("sesv2", region_name=REGION)
    stubber = Stubber(client)
    stubber.add_response("send_email", {"MessageId": "clinic-message"})
    stubber.add_client_error(
        "send_email",
        service_error_code="MessageRejected",
        service_message="Email address is not verified. The following identities failed the check in"
        " region EU-WEST-2: patient1@example.com",
        http_status_code=400,
    )
    stubber.activate()
    notifier = notifier_with(mailer_for=lambda mail: SesMailer(client_factory=lambda: client))
    enquiry = an_enquiry(1)
    event = stored(dynamodb, enquiry)
    capsys.readouterr()

    # When the record is handled
    result = notifier(event)

    # Then the record succeeded, the clinic's email is sent and marked, and the refusal is logged by
    # enquiry id (never the address) and counted for the failure-rate alarm
    assert result == {"batchItemFailures": []}
    stubber.assert_no_pending_responses()
    marked = item(dynamodb, enquiry["id"])
    assert marked["ses_message_id"] == "clinic-message"
    assert marked["acknowledgement"] == "refused"
    assert "acknowledged_at" not in marked
    [refusal] = [r for r in log_records(log_output) if r["message"] == "acknowledgement not sent"]
    assert (refusal["enquiry_id"], refusal["reason"], refusal["permanent"]) == (
        enquiry["id"],
        "MessageRejected",
        True,
    )
    assert refusal["level"] == "ERROR"
    assert "patient1" not in log_output.getvalue()
    printed = capsys.readouterr().out
    assert emitted(printed, "AcknowledgementFailed") == [1]
    assert emitted(printed, "EnquiryNotified") == [1]
    assert emitted(printed, "NotificationFailed") == []

    # And when the stream delivers the record again, nothing is sent again (neither email)
    assert notifier(event) == {"batchItemFailures": []}


def test_acknowledgement_unexpected_error_never_fails_the_record(
    notifier: Notifier, dynamodb: Any, monkeypatch: pytest.MonkeyPatch, log_output: io.StringIO
) -> None:
    # Given a guard table the role may not write (a permission left out of a deploy)
    def denied(*args: Any, **kwargs: Any) -> Any:
        raise ClientError({"Error": {"Code": "AccessDeniedException", "Message": "no"}}, "TransactWriteItems")

    monkeypatch.setattr(notifier.acknowledger._store, "reserve", denied)
    enquiry = an_enquiry(1)

    # When an enquiry is notified
    result = notifier(stored(dynamodb, enquiry))

    # Then the clinic's email is sent and the record succeeds; the acknowledgement's failure is logged
    assert result == {"batchItemFailures": []}
    assert len(sent()) == 1
    [failure] = [r for r in log_records(log_output) if r["message"] == "acknowledgement not sent"]
    assert (failure["enquiry_id"], failure["reason"]) == (enquiry["id"], "ClientError")


def test_acknowledgement_storage_throttled_is_tried_again_on_redelivery(
    notifier: Notifier, dynamodb: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given the guard table throttling the reservation once
    store = notifier.acknowledger._store
    real_reserve = store.reserve
    throttled = {"left": 1}

    def reserve(*args: Any, **kwargs: Any) -> Any:
        if throttled["left"]:
            throttled["left"] -= 1
            from enquiries.aws import StorageUnavailable

            raise StorageUnavailable("ThrottlingException")
        return real_reserve(*args, **kwargs)

    monkeypatch.setattr(store, "reserve", reserve)
    event = stored(dynamodb, an_enquiry(1))

    # When the record is handled, and the stream delivers it again (for another record's sake)
    notifier(event)
    first = len(acknowledgements())
    notifier(event)

    # Then nothing was reserved or sent the first time, and the redelivery sent it
    assert (first, len(acknowledgements())) == (0, 1)


# --- exactly once ------------------------------------------------------------------------------------


def test_acknowledgement_exactly_once_under_a_retried_batch(notifier: Notifier, dynamodb: Any) -> None:
    # Given a batch of three enquiries from three addresses
    event = stored(dynamodb, *(an_enquiry(number) for number in (1, 2, 3)))

    # When the batch is handled, and the stream delivers it again
    first = notifier(event)
    second = notifier(event)

    # Then the clinic's three emails come first, then the three acknowledgements, and nothing twice
    assert first == second == {"batchItemFailures": []}
    assert [to_addresses(message)[0] for message in sent()] == [
        "frontdesk@clinic.example",
        "frontdesk@clinic.example",
        "frontdesk@clinic.example",
        "patient1@example.com",
        "patient2@example.com",
        "patient3@example.com",
    ]


def test_acknowledgement_sent_but_not_recorded_is_not_sent_again(
    notifier: Notifier, dynamodb: Any, monkeypatch: pytest.MonkeyPatch, log_output: io.StringIO
) -> None:
    # Given the enquiries table failing the update that records a sent acknowledgement
    store = notifier.acknowledger._store
    real_record = store.record

    def record(enquiry_id: str, outcome: str, *args: Any) -> None:
        if outcome == "sent":
            from enquiries.aws import StorageUnavailable

            raise StorageUnavailable("ProvisionedThroughputExceededException")
        real_record(enquiry_id, outcome, *args)

    monkeypatch.setattr(store, "record", record)
    enquiry = an_enquiry(1)
    event = stored(dynamodb, enquiry)

    # When the record is handled, and then delivered again
    notifier(event)
    notifier(event)

    # Then the patient got one acknowledgement: the address stayed reserved by this enquiry, so the
    # redelivery sent nothing, and recorded that an earlier attempt was interrupted
    assert len(acknowledgements()) == 1
    assert item(dynamodb, enquiry["id"])["acknowledgement"] == "interrupted"
    assert [r["message"] for r in log_records(log_output) if "interrupted" in r["message"]] == [
        "acknowledgement interrupted before"
    ]


# --- time -------------------------------------------------------------------------------------------


class ShortContext(FakeContext):
    """An invocation with `left` ms remaining throughout."""

    def __init__(self, left: int) -> None:
        super().__init__(function_name="NotifyEnquiryFunction")
        self.left = left

    def get_remaining_time_in_millis(self) -> int:
        return self.left


def test_acknowledgement_not_started_without_time_for_its_worst_case(
    notifier: Notifier, dynamodb: Any, log_output: io.StringIO
) -> None:
    # Given an invocation with less time left than an acknowledgement can take at worst
    enquiry = an_enquiry(1)
    event = stored(dynamodb, enquiry)
    notifier.context = ShortContext(ACKNOWLEDGEMENT_START_MIN_MILLIS - 1)

    # When the record is handled
    result = notifier(event)

    # Then the clinic's email is sent and the record succeeds; the acknowledgement waits, logged
    assert result == {"batchItemFailures": []}
    assert len(sent()) == 1
    assert "acknowledgement" not in item(dynamodb, enquiry["id"])
    [deferred] = [r for r in log_records(log_output) if r["message"] == "acknowledgement deferred"]
    assert deferred["enquiry_id"] == enquiry["id"]

    # And a redelivery of the record with time enough sends it
    notifier.context = ShortContext(ACKNOWLEDGEMENT_START_MIN_MILLIS)
    notifier(event)
    assert len(acknowledgements()) == 1


def test_acknowledgement_worst_case_follows_the_clients_and_fits_the_timeout_with_a_record(
    dynamodb: Any,
) -> None:
    from enquiries.aws_clients import dynamodb_client, secretsmanager_client

    # Given the clients as configured, and the notifier's timeout in the template
    timeout = load_template()["Resources"]["NotifyEnquiryFunction"]["Properties"]["Timeout"]

    def worst_case(client: Any) -> int:
        config = client.meta.config
        return int(config.retries["total_max_attempts"] * (config.connect_timeout + config.read_timeout) + 1)

    # Then an acknowledgement's worst case is the key's read, the reservation, the send and the
    # record, and one record and one acknowledgement fit in one invocation at worst
    assert (
        worst_case(secretsmanager_client()) + 2 * worst_case(dynamodb_client()) + worst_case(sesv2_client())
    ) == ACKNOWLEDGEMENT_MAX_SECONDS
    assert ACKNOWLEDGEMENT_MAX_SECONDS == 30
    assert timeout * 1000 > RECORD_START_MIN_MILLIS + ACKNOWLEDGEMENT_START_MIN_MILLIS
    sesv2_client.cache_clear()


# --- configuration ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("settings", "named"),
    [
        ({"CLINIC_NAME": ""}, "CLINIC_NAME is required when ACKNOWLEDGE_ENQUIRER is true"),
        ({"CLINIC_NAME": "Riverside\u202eOsteopathy"}, "CLINIC_NAME is invalid"),
        ({"GUARD_TABLE_NAME": ""}, "GUARD_TABLE_NAME required when ACKNOWLEDGE_ENQUIRER is true"),
        ({"CLIENT_ADDRESS_SECRET_ARN": ""}, "CLIENT_ADDRESS_SECRET_ARN required"),
        ({"ACKNOWLEDGEMENT_DAILY_CAP": "0"}, "ACKNOWLEDGEMENT_DAILY_CAP is invalid"),
        ({"ACKNOWLEDGE_ENQUIRER": "sometimes"}, "ACKNOWLEDGE_ENQUIRER is invalid"),
    ],
)
def test_acknowledgement_bad_configuration_stops_the_notifier_at_start(
    notifier_with: Callable[..., Notifier], settings: dict[str, str], named: str
) -> None:
    # When Lambda initialises the notifier with acknowledgements on and a setting they need missing or bad
    with pytest.raises(SettingsError, match=named):
        notifier_with(**settings)


# --- only for stored enquiries -------------------------------------------------------------------------


def stream_event(dynamodb: Any) -> dict[str, Any]:
    """Every INSERT on the table's stream so far (what the mapping's filter lets through), as Lambda
    hands records to the notifier."""
    from emulator.stream import lambda_record

    arn = dynamodb.describe_table(TableName=TABLE_NAME)["Table"]["LatestStreamArn"]
    streams = boto3.client("dynamodbstreams", region_name=REGION)
    raw: list[dict[str, Any]] = []
    for shard in streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"]:
        iterator = streams.get_shard_iterator(
            StreamArn=arn, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
        )["ShardIterator"]
        raw += streams.get_records(ShardIterator=iterator)["Records"]
    return {
        "Records": [
            lambda_record(record, region=REGION, stream_arn=arn)
            for record in raw
            if record["eventName"] == "INSERT"
        ]
    }


FIRST = {
    "name": "Jane Doe",
    "email": "patient@example.com",
    "message": "Is Saturday possible?",
    "consent": True,
}
VICTIM = "victim@example.net"


def submission(key: str | None = None, **fields: Any) -> dict[str, Any]:
    event = with_json_body("submit-json.json", {**FIRST, **fields})
    if key is not None:
        event["headers"]["idempotency-key"] = key
    return event


# Each submission that must never reach the table, sent after a first real one (key "first-key") from
# the same client; the status its sender gets, and the client's RATE_LIMIT_PER_HOUR.
NEVER_STORED = {
    "robot trap filled": (submission(email=VICTIM, _gotcha="https://cheap-pills.example"), 201, "10"),
    "fields refused": (submission(email=VICTIM, message=""), 422, "10"),
    "same Idempotency-Key, another body": (submission("first-key", email=VICTIM, message="Buy"), 422, "10"),
    "double submit": (submission(), 201, "10"),
    "over the rate limit": (submission(email=VICTIM, message="Another question"), 429, "1"),
}


@pytest.mark.parametrize("case", sorted(NEVER_STORED))
def test_acknowledgement_only_for_a_stored_enquiry(
    notifier: Notifier, make_handler: Callable[..., Any], dynamodb: Any, case: str
) -> None:
    # Given a real enquiry accepted from a client
    event, status, limit = NEVER_STORED[case]
    submit = make_handler(RATE_LIMIT_PER_HOUR=limit)
    assert submit(submission("first-key"))["statusCode"] == 201

    # When that client sends this submission, and the notifier takes every INSERT on the stream
    assert submit(copy.deepcopy(event))["statusCode"] == status
    notifier(stream_event(dynamodb))

    # Then only the real enquiry was stored, emailed and acknowledged: the submission never reached
    # the table, so never the stream, and nobody else got an email
    assert [found["email"] for found in stored_items(dynamodb)] == [FIRST["email"]]
    assert len(sent()) == 2
    assert [to_addresses(message) for message in acknowledgements()] == [[FIRST["email"]]]


@pytest.mark.parametrize(("verdict", "status", "acknowledged"), [(True, 201, 1), (False, 422, 0)])
def test_acknowledgement_with_turnstile_only_for_a_submission_that_passed_it(
    notifier: Notifier,
    make_handler: Callable[..., Any],
    dynamodb: Any,
    siteverify: Siteverify,
    verdict: bool,
    status: int,
    acknowledged: int,
) -> None:
    # Given Turnstile on, and Cloudflare's verdict on this submission's token
    siteverify.answer({"success": verdict, "error-codes": [] if verdict else ["invalid-input-response"]})
    submit = make_handler(TURNSTILE_SECRET=TURNSTILE_KEY, TURNSTILE_VERIFY_URL=siteverify.url)

    # When it is submitted, and the notifier takes every INSERT on the stream
    answer = submit(submission(email=VICTIM, **{"cf-turnstile-response": "XXXX.DUMMY.TOKEN.XXXX"}))
    inserts = stream_event(dynamodb)
    if inserts["Records"]:  # Lambda never invokes the notifier with no record
        notifier(inserts)

    # Then it is acknowledged only if it passed: a failed check is refused, never stored
    assert answer["statusCode"] == status
    assert len(acknowledgements()) == acknowledged
    assert len(stored_items(dynamodb)) == acknowledged
