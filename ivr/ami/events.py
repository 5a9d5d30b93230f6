"""The AMI events the service listens to, and the filters that make Asterisk send only those.

One source for both places the filters are used: the link sends them with the AMI ``Filter``
action after login (``send_filter``), and ``asterisk-config`` writes them into the generated
``manager.conf`` as ``eventfilter`` lines.

:data:`SERVICE_FILTERS` uses Asterisk's *advanced* event filtering (``eventfilter(<criteria>)``,
the Filter action's ``MatchCriteria``), in Asterisk 18.26.0, 20.11.0, 21.6.0, 22.1.0 and later
("manager: Enhance event filtering for performance", asterisk/asterisk#874; not in 22.0.x):

- one ``name(<event>)`` include per event the service reads, except ``VarSet``: names are
  compared by hash, not by a regex over the whole event;
- ``VarSet`` only for the variables the tracker keeps (``header(Variable)``): the dialplan's
  own (``AGISTATUS``, ``DIALSTATUS``, ``QUEUESTATUS`` ...) are never sent;
- ``Newexten`` without the bookkeeping applications (:data:`BOOKKEEPING_APPLICATIONS`), an
  exclude filter: Asterisk applies the exclude filters to what the include filters let in.

An older Asterisk ignores ``eventfilter(...)`` lines in ``manager.conf`` (it only knows the key
``eventfilter``): it sends every event, and the service still works. Its Filter action ignores
``MatchCriteria`` and takes each expression as a regex over the whole event (an empty one, for
the ``name()`` filters, matches everything where the C library's regcomp accepts it), so
``send_filter`` stays off there. For such a version, :data:`LEGACY_SERVICE_FILTERS` (one
whole-event regex per event name, ``VarSet`` and every ``Newexten`` included) is what
``asterisk-config --legacy-eventfilter`` writes.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from ivr.ami.protocol import event_whitelist_filter
from ivr.ami.queues import QUEUE_EVENTS
from ivr.ami.tracker import HOTLINE_VARIABLES, TRACKED_EVENTS

__all__ = [
    "BOOKKEEPING_APPLICATIONS",
    "LEGACY_SERVICE_FILTERS",
    "SERVICE_EVENTS",
    "SERVICE_FILTERS",
    "EventFilter",
    "MatchMethod",
]

#: The call tracker's events, the queue figures' (AgentConnect), and the answer to an
#: asynchronous Originate (callbacks, three-way calls). Listings that answer our own actions
#: (CoreShowChannel) are never filtered.
SERVICE_EVENTS: frozenset[str] = TRACKED_EVENTS | QUEUE_EVENTS | {"OriginateResponse"}

#: Dialplan applications whose ``Newexten`` tells the service nothing. ``Newexten`` serves
#: two purposes here: the call's live location (``GET /calls``: the IVR's ``AGI``, a
#: ``Queue``, a ``Dial``) and, in the queue figures, noticing that a caller who left a queue
#: moved on in the dialplan. These applications return at once and lead to another step,
#: whose ``Newexten`` (or the ``Hangup``) comes right after theirs: setting variables (the
#: ``VarSet`` events carry what matters), jumps and subroutine calls, logging, and ``Answer``
#: (the state change is ``Newstate``; Answer waits at most 0.5 s for media to flow). Left
#: out on purpose: ``ExecIf``/``ExecIfTime``/``Exec``/``TryExec`` run another application
#: (``ExecIf(...?Queue(...))``) inside their own step, which gets no ``Newexten`` of its own;
#: ``Wait*``, ``Playback``, ``Read``, ``Hangup`` take time or end the call.
BOOKKEEPING_APPLICATIONS: frozenset[str] = frozenset(
    {
        "Set",
        "MSet",
        "Answer",
        "NoOp",
        "Verbose",
        "Log",
        "Goto",
        "GotoIf",
        "GotoIfTime",
        "Gosub",
        "GosubIf",
        "Return",
    }
)

#: How an advanced filter's expression is matched (Asterisk's ``method()``).
MatchMethod = Literal["regex", "exact", "starts_with", "ends_with", "contains", "none"]


@dataclass(frozen=True, slots=True)
class EventFilter:
    """One AMI event filter: ``criteria`` (``""`` for a legacy filter) and its expression.

    A legacy filter is a POSIX regex over the whole event text (``!`` in front: an exclude
    filter). An advanced one's ``criteria`` is what goes inside ``eventfilter(...)`` and into
    the Filter action's ``MatchCriteria`` header, e.g.
    ``action(include),name(VarSet),header(Variable),method(regex)``. Build those with
    :meth:`match`, which always writes the method: with criteria Asterisk's default method is
    ``none``, and it refuses an expression under ``none`` ("method can't be 'none' with a
    filter pattern", ``manager_add_filter`` in main/manager.c).
    """

    criteria: str
    expression: str

    def __post_init__(self) -> None:
        for part in (self.criteria, self.expression):
            if "\r" in part or "\n" in part:
                raise ValueError(f"an event filter cannot hold a line end: {part!r}")
        if ";" in self.expression:
            raise ValueError("';' starts a comment in manager.conf; keep it out of filters")
        if not self.criteria and not self.expression:
            raise ValueError("a legacy event filter needs an expression")

    @classmethod
    def legacy(cls, expression: str) -> EventFilter:
        """A whole-event regex, as every Asterisk version reads it."""
        return cls("", expression)

    @classmethod
    def match(
        cls,
        *,
        action: Literal["include", "exclude"] = "include",
        name: str = "",
        header: str = "",
        method: MatchMethod = "none",
        expression: str = "",
    ) -> EventFilter:
        """An advanced filter (Asterisk 18.26/20.11/21.6/22.1 and later)."""
        if (method == "none") != (not expression):
            raise ValueError("method 'none' goes without an expression, any other with one")
        if method == "none" and not name and not header:
            raise ValueError("a filter without an expression needs a name or a header")
        for word in (name, header):
            if any(ch in word for ch in " ,()"):
                raise ValueError(f"{word!r}: Asterisk splits criteria at spaces, commas, ')'")
        parts = [f"action({action})"]
        if name:
            parts.append(f"name({name})")
        if header:
            parts.append(f"header({header})")
        parts.append(f"method({method})")
        return cls(",".join(parts), expression)

    @property
    def is_legacy(self) -> bool:
        """A whole-event regex without criteria."""
        return not self.criteria

    def action(self) -> dict[str, str]:
        """The AMI ``Filter`` action that adds this filter to the session (a legacy filter has
        no ``MatchCriteria`` header; Asterisk wraps the header in ``eventfilter(...)``)."""
        fields = {"Action": "Filter", "Operation": "Add"}
        if self.criteria:
            fields["MatchCriteria"] = self.criteria
        fields["Filter"] = self.expression
        return fields

    def conf_line(self) -> str:
        """The ``manager.conf`` line: ``eventfilter(<criteria>) = <expression>``."""
        key = f"eventfilter({self.criteria})" if self.criteria else "eventfilter"
        return f"{key} = {self.expression}".rstrip()


def _one_of(words: Iterable[str]) -> str:
    return "(" + "|".join(re.escape(word) for word in sorted(words)) + ")"


#: What the service asks Asterisk to send: see the module's docstring. Asterisk's
#: should_send_event (main/manager.c): with include filters an event must match one of them
#: (they are OR'ed), then any matching exclude filter drops it. A header filter looks at the
#: value of each line that begins with "<header>:" (filter_cmp_fn), and a regex is POSIX
#: extended, matched anywhere in that value: hence the anchors.
SERVICE_FILTERS: tuple[EventFilter, ...] = (
    *(EventFilter.match(name=name) for name in sorted(SERVICE_EVENTS - {"VarSet"})),
    # Any number of leading underscores, as the tracker strips them (Set(__X=..) is reported
    # with its inheritance prefix).
    EventFilter.match(
        name="VarSet",
        header="Variable",
        method="regex",
        expression=f"^_*{_one_of(HOTLINE_VARIABLES)}$",
    ),
    EventFilter.match(
        action="exclude",
        name="Newexten",
        header="Application",
        method="regex",
        expression=f"^{_one_of(BOOKKEEPING_APPLICATIONS)}$",
    ),
)

#: For an Asterisk without advanced filtering: one whole-event regex per name.
LEGACY_SERVICE_FILTERS: tuple[EventFilter, ...] = tuple(
    EventFilter.legacy(event_whitelist_filter([name])) for name in sorted(SERVICE_EVENTS)
)
