"""fast_init: the same objects as the dataclass's own __init__, made faster, still frozen."""

from __future__ import annotations

import dataclasses
from dataclasses import FrozenInstanceError, InitVar, dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest

from ivr._frozen import fast_init
from ivr.engine.lines import LineMatch, LineSources
from ivr.engine.route import RequestKind, Route, RouteKind, RouteReason, Urgency
from ivr.engine.walk import Ask, Done
from ivr.tickets.model import Disposition, Ticket


def _shape() -> type[Any]:
    @dataclass(frozen=True, slots=True)
    class Shape:
        name: str
        sides: int = 4
        tags: list[str] = field(default_factory=list)
        label: str = "plain"

    return Shape


@pytest.mark.parametrize(
    ("args", "kwargs"),
    [
        (("square",), {}),
        (("triangle", 3), {}),
        (("hexagon", 6, ["even"], "fancy"), {}),
        ((), {"name": "kite", "label": "odd"}),
        (("pentagon",), {"tags": ["odd"], "sides": 5}),
    ],
)
def test_the_same_objects_as_the_dataclass_makes(
    args: tuple[object, ...], kwargs: dict[str, object]
) -> None:
    """Positional, keyword, defaults and factories: field for field what dataclass makes."""
    reference, fast = _shape(), fast_init(_shape())
    made, expected = fast(*args, **kwargs), reference(*args, **kwargs)
    assert dataclasses.astuple(made) == dataclasses.astuple(expected)
    assert repr(made).split("(", 1)[1] == repr(expected).split("(", 1)[1]


def test_a_default_factory_runs_for_each_object_and_the_class_stays_frozen() -> None:
    """A factory's value is new for each object; the object cannot be changed after."""
    shape = fast_init(_shape())
    one, two = shape("a"), shape("b")
    assert one.tags == [] and one.tags is not two.tags
    with pytest.raises(FrozenInstanceError):
        one.name = "changed"
    with pytest.raises(FrozenInstanceError):
        del one.sides
    with pytest.raises(TypeError):
        shape()  # the required field is still required
    with pytest.raises(TypeError):
        shape("a", colour="red")  # and no parameter is invented


def test_what_it_cannot_do_the_same_it_refuses() -> None:
    """A class it would get wrong (not frozen, no slots, post-init, keyword-only, init-only
    fields) is refused, not half served."""
    @dataclass(slots=True)
    class Mutable:
        x: int

    @dataclass(frozen=True)
    class NoSlots:
        x: int

    @dataclass(frozen=True, slots=True)
    class PostInit:
        x: int

        def __post_init__(self) -> None:
            pass

    @dataclass(frozen=True, slots=True)
    class KeywordOnly:
        x: int = field(kw_only=True)

    @dataclass(frozen=True, slots=True)
    class WithInitVar:
        x: int
        scale: InitVar[int] = 1

    for cls in (Mutable, NoSlots, PostInit, KeywordOnly, WithInitVar):
        with pytest.raises(TypeError):
            fast_init(cls)


def test_the_call_paths_objects_are_whole() -> None:
    """The classes a call makes with it: every field where it was given, replace() works."""
    now = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
    values: dict[str, Any] = {f.name: f"v-{f.name}" for f in dataclasses.fields(Ticket)}
    values.update(ivr_path=("root",), sla_due=now, started_at=now, ended_at=now,
                  disposition=Disposition.AGENT, extra={"a": "b"})
    ticket = Ticket(**values)
    assert {f.name: getattr(ticket, f.name) for f in dataclasses.fields(Ticket)} == values
    assert dataclasses.replace(ticket, caller_number="138").caller_number == "138"
    route = Route(RouteKind.QUEUE, "q", RequestKind.CONSULT, Urgency.NORMAL)
    assert (route.kind, route.target, route.request_kind, route.urgency, route.reason) == (
        RouteKind.QUEUE, "q", RequestKind.CONSULT, Urgency.NORMAL, RouteReason.SELECTED)
    assert LineSources(dnid="96119").dnid == "96119" and LineSources().rdnis == ""
    assert Ask("root", ("p",), "12", 5.0).timeout_s == 5.0
    assert Done(route, ()).route is route
    match = LineMatch(line=None, source="dnid", number="96119")  # type: ignore[arg-type]
    assert (match.source, match.number) == ("dnid", "96119")
