"""A simulated Asterisk channel: its identity, its place in the dialplan, and its AMI snapshot."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

STATE_DESC: Mapping[int, str] = MappingProxyType(
    {0: "Down", 4: "Ring", 5: "Ringing", 6: "Up", 7: "Busy"}
)
STATE_RING, STATE_UP = 4, 6
UNKNOWN = "<unknown>"


class Channel:
    """One channel's mutable state; the AMI header block of its snapshot is cached between changes.

    Calls emit dozens of events each, so the snapshot text (15 headers) is built once per
    state change rather than once per event.
    """

    __slots__ = (
        "_dest_snapshot",
        "_snapshot",
        "app_data",
        "application",
        "caller_name",
        "caller_number",
        "connected_name",
        "connected_number",
        "context",
        "exten",
        "language",
        "linkedid",
        "name",
        "priority",
        "state",
        "uniqueid",
    )

    def __init__(
        self,
        *,
        name: str,
        uniqueid: str,
        linkedid: str,
        caller_number: str,
        caller_name: str,
        context: str,
        exten: str,
        state: int = STATE_RING,
        language: str = "en",
    ) -> None:
        self.name = name
        self.uniqueid = uniqueid
        self.linkedid = linkedid
        self.caller_number = caller_number
        self.caller_name = caller_name
        self.connected_number = ""
        self.connected_name = ""
        self.language = language
        self.state = state
        self.context = context
        self.exten = exten
        self.priority = 1
        self.application = ""
        self.app_data = ""
        self._snapshot: str | None = None
        self._dest_snapshot: str | None = None

    def move(
        self, context: str, exten: str, priority: int, application: str, app_data: str
    ) -> None:
        """Put the channel on a dialplan step (what ``Newexten`` and ``CoreShowChannel`` report)."""
        self.context, self.exten, self.priority = context, exten, priority
        self.application, self.app_data = application, app_data
        self._snapshot = self._dest_snapshot = None

    def set_state(self, state: int) -> None:
        """Change the channel state (``Newstate``)."""
        self.state = state
        self._snapshot = self._dest_snapshot = None

    def snapshot(self) -> str:
        """The channel's headers, ``Channel`` to ``Linkedid``, each ending in CRLF."""
        if self._snapshot is None:
            self._snapshot = self._headers("")
        return self._snapshot

    def dest_snapshot(self) -> str:
        """The same headers prefixed ``Dest`` as ``DialBegin``/``DialEnd`` carry them."""
        if self._dest_snapshot is None:
            self._dest_snapshot = self._headers("Dest")
        return self._dest_snapshot

    def _headers(self, prefix: str) -> str:
        p = prefix
        return (
            f"{p}Channel: {self.name}\r\n"
            f"{p}ChannelState: {self.state}\r\n"
            f"{p}ChannelStateDesc: {STATE_DESC.get(self.state, 'Unknown')}\r\n"
            f"{p}CallerIDNum: {self.caller_number or UNKNOWN}\r\n"
            f"{p}CallerIDName: {self.caller_name or UNKNOWN}\r\n"
            f"{p}ConnectedLineNum: {self.connected_number or UNKNOWN}\r\n"
            f"{p}ConnectedLineName: {self.connected_name or UNKNOWN}\r\n"
            f"{p}Language: {self.language}\r\n"
            f"{p}AccountCode: \r\n"
            f"{p}Context: {self.context}\r\n"
            f"{p}Exten: {self.exten}\r\n"
            f"{p}Priority: {self.priority}\r\n"
            f"{p}Uniqueid: {self.uniqueid}\r\n"
            f"{p}Linkedid: {self.linkedid}\r\n"
        )
