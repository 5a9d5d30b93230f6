"""Queue figures from app_queue's AMI events: who waits where, and how each wait ended.

Pure: events in, outcomes out. The wiring turns outcomes into the answer rate (接通率) and
the share answered within 15 s.

app_queue's order: a caller joins (``QueueCallerJoin``); if a member answers, the caller leaves
(``QueueCallerLeave``) and then ``AgentConnect`` says who took it; if the caller hangs up,
``QueueCallerAbandon`` comes before ``QueueCallerLeave``. A caller who leaves with neither (a
queue timeout, a full queue, a redirect) has exited, which shows at that channel's next step:
its next ``Newexten`` the service receives (the event filters leave out the bookkeeping steps,
``GotoIf``/``Goto`` after a ``Queue`` among them: ``ivr.ami.events``), or its ``Hangup``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from ivr._frozen import fast_init
from ivr.ami._parser import AmiMessage

#: The events this needs; the wiring adds them to the link's event filter.
QUEUE_EVENTS = frozenset(
    {
        "QueueCallerJoin",
        "QueueCallerLeave",
        "QueueCallerAbandon",
        "AgentConnect",
        "Newexten",
        "Hangup",
    }
)


#: How a wait in a queue ended.
QueueResult = Literal["answered", "abandoned", "exited"]


@dataclass(frozen=True, slots=True)
class QueueJoined:
    """A caller started waiting in ``queue``."""

    queue: str


@fast_init
@dataclass(frozen=True, slots=True)
class QueueLeft:
    """A caller stopped waiting: answered, abandoned or exited, after ``wait_seconds``."""

    queue: str
    result: QueueResult
    wait_seconds: float


#: A handler of :meth:`QueueStats.consumer`: an event and its ``Uniqueid`` in, the wait it
#: ended (if it did) out.
WaitConsumer = Callable[[AmiMessage, str], QueueLeft | None]


@dataclass(slots=True)
class _Waiting:
    queue: str
    joined: float
    left: bool = False


class QueueStats:
    """Follows callers through the agent queues, keyed by the caller channel's Uniqueid."""

    def __init__(self, monotonic: Callable[[], float] = time.monotonic) -> None:
        self._monotonic = monotonic
        self._waiting: dict[str, _Waiting] = {}
        # The events that can end a wait, one handler per name, found with one lookup.
        self._consumers: dict[str, WaitConsumer] = {
            "QueueCallerAbandon": self._on_abandon,
            "AgentConnect": self._on_agent_connect,
            "QueueCallerLeave": self._on_leave,
            "Newexten": self._on_newexten,
            "Hangup": self._on_hangup,
        }

    @property
    def waiting(self) -> int:
        """Callers waiting now."""
        return len(self._waiting)

    def apply(
        self, event: AmiMessage, uniqueid: str | None = None
    ) -> QueueJoined | QueueLeft | None:
        """Take one event; say whether a wait began or ended. ``uniqueid``, the event's
        ``Uniqueid`` when the caller has read it already."""
        if uniqueid is None:
            uniqueid = event.get("Uniqueid")
        if event.event == "QueueCallerJoin":
            queue = event.get("Queue")
            self.join(uniqueid, queue)
            return QueueJoined(queue)
        consumer = self._consumers.get(event.event)
        return None if consumer is None else consumer(event, uniqueid)

    def join(self, uniqueid: str, queue: str) -> None:
        """A ``QueueCallerJoin`` whose ``Uniqueid`` and ``Queue`` the caller has read (the call
        tracker needs them too)."""
        self._waiting[uniqueid] = _Waiting(queue, self._monotonic())

    def consumer(self, name: str) -> WaitConsumer | None:
        """What :meth:`apply` does with an event named ``name`` and its ``Uniqueid``, for a
        caller that dispatches on names itself; None: nothing. ``QueueCallerJoin`` has none
        here: it is :meth:`join`."""
        return self._consumers.get(name)

    def _on_abandon(self, event: AmiMessage, uniqueid: str) -> QueueLeft | None:
        if uniqueid not in self._waiting:
            return None
        return self._end(uniqueid, "abandoned", event.get("HoldTime"))

    def _on_agent_connect(self, event: AmiMessage, uniqueid: str) -> QueueLeft | None:
        if uniqueid not in self._waiting:
            return None
        return self._end(uniqueid, "answered", event.get("HoldTime"))

    def _on_leave(self, event: AmiMessage, uniqueid: str) -> None:
        waiting = self._waiting.get(uniqueid)
        if waiting is not None:
            waiting.left = True

    def _on_newexten(self, event: AmiMessage, uniqueid: str) -> QueueLeft | None:
        waiting = self._waiting.get(uniqueid)
        if waiting is None or not waiting.left:
            return None
        return self._end(uniqueid, "exited", "")

    def _on_hangup(self, event: AmiMessage, uniqueid: str) -> QueueLeft | None:
        if uniqueid not in self._waiting:
            return None
        return self._end(uniqueid, "exited", "")

    def _end(self, uniqueid: str, result: QueueResult, hold_time: str) -> QueueLeft:
        waiting = self._waiting.pop(uniqueid)
        # Asterisk's HoldTime is whole seconds of the caller's wait; our clock is the fallback.
        wait = float(hold_time) if hold_time.isdigit() else self._monotonic() - waiting.joined
        return QueueLeft(waiting.queue, result, wait)
