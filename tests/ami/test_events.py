"""The service's AMI event filters as data: one description for the Filter action and
manager.conf, refused where Asterisk would refuse it."""

from __future__ import annotations

import pytest

from ivr.ami.events import SERVICE_EVENTS, SERVICE_FILTERS, EventFilter
from ivr.ami.tracker import HOTLINE_VARIABLES
from ivr.simpbx._event_filters import parse_filter


def test_one_filter_two_spellings() -> None:
    """The Filter action carries MatchCriteria only for an advanced filter; manager.conf puts the
    criteria in the key."""
    advanced = EventFilter.match(
        action="exclude", name="Newexten", header="Application", method="exact", expression="Set"
    )
    assert advanced.action() == {
        "Action": "Filter",
        "Operation": "Add",
        "MatchCriteria": "action(exclude),name(Newexten),header(Application),method(exact)",
        "Filter": "Set",
    }
    assert advanced.conf_line() == (
        "eventfilter(action(exclude),name(Newexten),header(Application),method(exact)) = Set"
    )
    legacy = EventFilter.legacy("!Channel: DAHDI/")
    assert legacy.is_legacy and not advanced.is_legacy
    assert legacy.action() == {"Action": "Filter", "Operation": "Add", "Filter": "!Channel: DAHDI/"}
    assert legacy.conf_line() == "eventfilter = !Channel: DAHDI/"
    assert EventFilter.match(name="Hangup").conf_line() == (
        "eventfilter(action(include),name(Hangup),method(none)) ="
    )


@pytest.mark.parametrize(
    ("build", "why"),
    [
        (lambda: EventFilter.match(name="VarSet", expression="HOTLINE"), "method 'none'"),
        (lambda: EventFilter.match(name="VarSet", method="regex"), "method 'none'"),
        (lambda: EventFilter.match(action="exclude"), "a name or a header"),
        (lambda: EventFilter.match(name="Var Set"), "splits criteria"),
        (lambda: EventFilter.match(header="Channel)", method="contains", expression="x"),
         "splits criteria"),
        (lambda: EventFilter.legacy(""), "needs an expression"),
        (lambda: EventFilter.legacy("Event: Hangup\r\nX: y"), "line end"),
        (lambda: EventFilter.legacy("Value: a;b"), "comment in manager.conf"),
    ],
)
def test_filters_asterisk_would_refuse_are_not_built(build, why: str) -> None:
    """What Asterisk refuses (or would read otherwise) fails here, at import time."""
    with pytest.raises(ValueError, match=why):
        build()


def test_service_filters_are_accepted_as_asterisk_parses_them() -> None:
    """Every service filter parses as Asterisk's manager_add_filter would, Filter action or
    manager.conf; VarSet only through its header filter, for the tracker's variables."""
    for event_filter in SERVICE_FILTERS:
        parsed = parse_filter(f"eventfilter({event_filter.criteria})", event_filter.expression)
        assert parsed.name in SERVICE_EVENTS
    names = {f.criteria for f in SERVICE_FILTERS if f.criteria.endswith("method(none)")}
    assert "action(include),name(VarSet),method(none)" not in names
    assert len(names) == len(SERVICE_EVENTS) - 1
    [varset] = [f for f in SERVICE_FILTERS if "name(VarSet)" in f.criteria]
    assert all(variable in varset.expression for variable in HOTLINE_VARIABLES)
