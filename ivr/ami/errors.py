"""Errors of the AMI link: faults of the PBX side kept apart from our own bugs."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ivr.errors import HotlineError

if TYPE_CHECKING:
    from ivr.ami.protocol import AmiResponse


class AmiError(HotlineError):
    """Base of every error raised on purpose by ``ivr.ami``."""


class AmiProtocolError(AmiError):
    """The byte stream from Asterisk cannot be AMI (for example a message over the size limit)."""


class AmiAuthError(AmiError):
    """Asterisk refused the Login (wrong user name or secret); it closes the connection next."""


class AmiActionError(AmiError):
    """Asterisk answered an action with ``Response: Error`` (or ``Failure``)."""

    def __init__(self, action: str, message: str, response: AmiResponse | None = None) -> None:
        super().__init__(f"{action}: {message}" if message else action)
        self.action = action
        self.message = message
        self.response = response


class AmiTimeout(AmiError, TimeoutError):
    """No answer came within the allowed time."""


class AmiNotConnected(AmiError):
    """The action was not sent because the link is down."""


class AmiConnectionLost(AmiError):
    """The link dropped while the action waited for its answer; it is never re-sent."""
