"""The two ways the command stops early, with the contract's exit statuses and a one-line reason."""

from __future__ import annotations

import click


class OperatorError(click.ClickException):
    """The command could not do what was asked (exit status 1); the message says why, in one line."""

    exit_code = 1


class Refused(click.ClickException):
    """The command will not do what was asked without confirmation (exit status 2)."""

    exit_code = 2
