"""`enquiries`: the clinic's command for the enquiries it holds (list, show, export, erase, subject
access, resend, stats), against a deployed stack or a running local server.

It lives outside functions/ so that it is never deployed into Lambda, and it reaches the functions'
own code through one module, `functions_adapter`.
"""
