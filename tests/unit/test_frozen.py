"""fast_init: the same objects as the dataclass's own __init__, made faster, still frozen."""

from __future__ import annotations

import copy
import dataclasses
import pickle
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

    @dataclass(frozen=True, slots=True)
    class Base:
        x: int

    @dataclass(frozen=True, slots=True)
    class Derived(Base):
        y: int

    for cls in (Mutable, NoSlots, PostInit, KeywordOnly, WithInitVar, Derived):
        with pytest.raises(TypeError):
            fast_init(cls)


def _ticket_values() -> dict[str, Any]:
    """A value for every field of a Ticket, each of the right type."""
    now = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
    values: dict[str, Any] = {f.name: f"v-{f.name}" for f in dataclasses.fields(Ticket)}
    values.update(ivr_path=("root",), sla_due=now, started_at=now, ended_at=now,
                  disposition=Disposition.AGENT, extra={"a": "b"})
    return values


def test_the_call_paths_objects_are_whole() -> None:
    """The classes a call makes with it: every field where it was given, replace() works."""
    values = _ticket_values()
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


def test_an_object_ends_of_its_own_class_and_a_subclass_is_served_too() -> None:
    """The object made is of the class itself, not of the twin it was while its fields were
    set; an object of a subclass (with slots of its own) gets its fields all the same."""
    shape = fast_init(_shape())

    class Painted(shape):  # type: ignore[valid-type, misc]
        __slots__ = ("colour",)

    plain, painted = shape("a", 3), Painted("b", 5, ["x"])
    assert type(plain) is shape and type(painted) is Painted
    assert (plain.name, plain.sides, painted.name, painted.sides, painted.tags) == (
        "a", 3, "b", 5, ["x"],
    )
    with pytest.raises(FrozenInstanceError):
        painted.name = "changed"
    with pytest.raises(AttributeError):
        painted.colour  # noqa: B018  # a slot of its own, never set


def test_tickets_copy_and_pickle_as_before() -> None:
    """A Ticket made by the faster __init__ copies, deep-copies and pickles to an equal one."""
    ticket = Ticket(**_ticket_values())
    for again in (copy.copy(ticket), copy.deepcopy(ticket), pickle.loads(pickle.dumps(ticket))):
        assert again == ticket and type(again) is Ticket
