"""AMI (Asterisk Manager Interface): pure parsing, a supervised link, live-call tracking.

- :class:`AmiParser` / :class:`AmiMessage`: sans-I/O framing of the byte stream;
- :class:`AmiProtocol`: panoramisk's protocol fed by that parser, with isolated handlers;
- :class:`AmiLink`: login, keepalive, reconnect with backoff, typed actions, subscriptions;
- :class:`CallTracker`: the table of live calls kept from events, summarising each call's end.
"""

from ivr.ami._parser import AmiMessage, AmiParser
from ivr.ami.errors import (
    AmiActionError,
    AmiAuthError,
    AmiConnectionLost,
    AmiError,
    AmiNotConnected,
    AmiProtocolError,
    AmiTimeout,
)
from ivr.ami.link import AmiLink
from ivr.ami.protocol import AmiProtocol, AmiResponse, event_whitelist_filter
from ivr.ami.tracker import TRACKED_EVENTS, CallEnd, CallTracker, DialOutcome, LiveCall

__all__ = [
    "TRACKED_EVENTS",
    "AmiActionError",
    "AmiAuthError",
    "AmiConnectionLost",
    "AmiError",
    "AmiLink",
    "AmiMessage",
    "AmiNotConnected",
    "AmiParser",
    "AmiProtocol",
    "AmiProtocolError",
    "AmiResponse",
    "AmiTimeout",
    "CallEnd",
    "CallTracker",
    "DialOutcome",
    "LiveCall",
    "event_whitelist_filter",
]
