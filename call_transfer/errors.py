"""Errors of call transfers."""

from ivr.errors import HotlineError


class TransferError(HotlineError):
    """A transfer could not be carried out."""
