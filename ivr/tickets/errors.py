"""The ticket package's exceptions."""

from __future__ import annotations

from ivr.errors import HotlineError


class TicketError(HotlineError):
    """Base of every error raised by the ticket package."""


class TicketStoreError(TicketError):
    """A ticket could not be written to (or read from) the store.

    Raised through the future that ``TicketStore.submit`` returns, never into the caller's task:
    a call keeps routing whatever the disk does.
    """
