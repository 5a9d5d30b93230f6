"""AMI event filters as Asterisk's manager applies them: legacy regexes and advanced criteria.

Follows ``main/manager.c`` of Asterisk 22.1 (advanced filtering arrived in 18.26.0, 20.11.0,
21.6.0 and 22.1.0: "manager: Enhance event filtering for performance", asterisk/asterisk#874):

- ``manager_add_filter(criteria, pattern)``: ``criteria`` is ``eventfilter`` (legacy: the
  pattern is a regex over the whole event, ``!`` in front makes it an exclude filter) or
  ``eventfilter(<options>)`` with options ``action(include|exclude)``, ``name(<event>)``,
  ``header(<header>)``, ``method(regex|exact|starts_with|ends_with|contains|none)``, split at
  spaces, commas and closing parentheses (``strtok_r(temp, " ,)")``). With options the method
  defaults to ``none``: a pattern needs an explicit method, and ``none`` needs no pattern and
  a name or a header. A leading ``!`` still makes an exclude filter (its ``!`` dropped) unless
  ``action()`` says otherwise. The AMI ``Filter`` action builds the criteria as
  ``eventfilter(`` + its ``MatchCriteria`` + ``)``.
- ``filter_cmp_fn``: a named filter matches only events of that name (Asterisk compares the
  name's hash); with a header it looks at each line that begins with ``<header>:`` (case
  sensitive), skips the blanks after the colon and ignores an empty value, and matches if any
  such value matches; without one it matches the whole event text.
- ``should_send_event``: no filters, everything passes; with include filters an event must
  match one; an exclude filter that matches drops it.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

__all__ = [
    "COMPILE_FAILED",
    "FORMAT_ERROR",
    "FilterError",
    "FilterSet",
    "ParsedFilter",
    "event_name",
    "parse_filter",
    "posix_to_python",
]

#: Asterisk's answers to a Filter action it refuses (``action_filter``), by failure.
FORMAT_ERROR = "Filter was formatted incorrectly.  Check the syntax of the filter given."
COMPILE_FAILED = "Filter did not compile.  Check the syntax of the filter given."

_METHODS = frozenset({"regex", "exact", "starts_with", "ends_with", "contains", "none"})
# ast_strip() and ast_skip_blanks(): every character up to and including the space.
_BLANKS = "".join(chr(code) for code in range(1, 33))

# Asterisk compiles filters as POSIX extended regular expressions; Python's re reads the
# bracket classes differently (and warns of a nested set).
_POSIX_CLASSES = {
    "[[:space:]]": r"\s",
    "[[:digit:]]": r"\d",
    "[[:alpha:]]": "[A-Za-z]",
    "[[:alnum:]]": "[A-Za-z0-9]",
    "[[:upper:]]": "[A-Z]",
    "[[:lower:]]": "[a-z]",
}


def posix_to_python(expression: str) -> str:
    """A POSIX extended regex in Python's syntax (the bracket classes Asterisk users write)."""
    for posix, python in _POSIX_CLASSES.items():
        expression = expression.replace(posix, python)
    return expression


class FilterError(ValueError):
    """Asterisk refuses the filter; ``answer`` is the message its Filter action sends."""

    def __init__(self, answer: str, why: str) -> None:
        super().__init__(why)
        self.answer = answer


def event_name(text: str) -> str:
    """The name of an event whose text starts with ``Event: <name>\\r\\n``."""
    end = text.find("\r", 7)
    return text[7:end] if end >= 0 else text[7:]


@dataclass(frozen=True, slots=True)
class ParsedFilter:
    """One parsed filter. ``header`` ends with its colon; ``name``/``header`` "" when absent.

    ``matcher`` tests a value (truthy: it matches); None for method ``none``, which matches
    whatever it is given.
    """

    exclude: bool
    name: str
    header: str
    method: str
    pattern: str
    matcher: Callable[[str], object] | None

    def matches(self, text: str) -> bool:
        """Whether an event (its whole text) matches, as filter_cmp_fn says; the caller has
        checked the event's name against ``name``."""
        matcher = self.matcher
        header = self.header
        if not header:
            return matcher is None or bool(matcher(text))
        # The lines that begin with "<header>:", found by a search rather than by splitting
        # the event into lines: an event without the header costs one find().
        needle = "\n" + header
        if text.startswith(header):
            start = 0
        else:
            start = text.find(needle) + 1
            if not start:
                return False
        while True:
            value_at = start + len(header)
            end = text.find("\r\n", value_at)
            value = (text[value_at:end] if end >= 0 else text[value_at:]).lstrip(_BLANKS)
            if value and (matcher is None or matcher(value)):
                return True
            start = text.find(needle, value_at) + 1
            if not start:
                return False


def _matcher(method: str, pattern: str) -> Callable[[str], object] | None:
    """match_eventdata() for one method and pattern."""
    if method == "none":
        return None
    if method == "regex":
        try:
            return re.compile(posix_to_python(pattern)).search
        except re.error as error:
            raise FilterError(COMPILE_FAILED, f"regex {pattern!r}: {error}") from None
    if method == "exact":
        return pattern.__eq__
    if method == "starts_with":
        return lambda value: value.startswith(pattern)
    if method == "ends_with":
        return lambda value: value.endswith(pattern)
    return lambda value: pattern in value  # contains


def parse_filter(criteria: str, pattern: str) -> ParsedFilter:
    """manager_add_filter(): ``criteria`` as a manager.conf key (``eventfilter`` or
    ``eventfilter(...)``), ``pattern`` its value. Raises :class:`FilterError`."""
    if not criteria:
        raise FilterError(FORMAT_ERROR, "missing criteria")
    exclude = pattern.startswith("!")
    if exclude:
        pattern = pattern[1:]
    options_at = criteria.find("(")
    if options_at < 0:
        if not pattern:
            raise FilterError(FORMAT_ERROR, "legacy filter with no filter pattern")
        return ParsedFilter(exclude, "", "", "regex", pattern, _matcher("regex", pattern))
    options = criteria[options_at + 1 :].strip(_BLANKS)
    if not options or not options.endswith(")"):
        raise FilterError(FORMAT_ERROR, "filter options not formatted correctly")
    name = header = ""
    method = "none"
    found = False
    for option in (part for part in re.split("[ ,)]", options) if part):
        _, paren, value = option.partition("(")
        value = value.strip(_BLANKS)
        if option.startswith("action"):
            if value not in ("include", "exclude"):
                raise FilterError(FORMAT_ERROR, f"'action' option {value!r} is unknown")
            exclude = value == "exclude"
        elif option.startswith(("name", "header", "method")) and (not paren or not value):
            # Asterisk itself dereferences a missing "(" here; an empty value it refuses.
            raise FilterError(FORMAT_ERROR, f"{option!r} parameter not formatted correctly")
        elif option.startswith("name"):
            name = value
        elif option.startswith("header"):
            header = value if value.endswith(":") else value + ":"
        elif option.startswith("method"):
            if value not in _METHODS:
                raise FilterError(FORMAT_ERROR, f"'method' option {value!r} is unknown")
            method = value
        else:
            raise FilterError(FORMAT_ERROR, f"filter option {option!r} is unknown")
        found = True
    if not found:
        raise FilterError(FORMAT_ERROR, "no action, name, header, or method option found")
    if not pattern and method != "none":
        raise FilterError(FORMAT_ERROR, f"method can't be {method!r} with no filter pattern")
    if pattern and method == "none":
        raise FilterError(FORMAT_ERROR, "method can't be 'none' with a filter pattern")
    if not name and not header and method == "none":
        raise FilterError(FORMAT_ERROR, "no name or header option found and no filter pattern")
    return ParsedFilter(exclude, name, header, method, pattern, _matcher(method, pattern))


class _Side:
    """The include or the exclude filters of a session, by the event name they need."""

    __slots__ = ("by_name", "count", "names", "unnamed")

    def __init__(self) -> None:
        self.count = 0
        self.names: set[str] = set()  # name-only filters: the name alone decides
        self.by_name: dict[str, list[ParsedFilter]] = {}
        self.unnamed: list[ParsedFilter] = []

    def add(self, event_filter: ParsedFilter) -> None:
        self.count += 1
        if event_filter.name and not event_filter.header and event_filter.matcher is None:
            self.names.add(event_filter.name)
        elif event_filter.name:
            self.by_name.setdefault(event_filter.name, []).append(event_filter)
        else:
            self.unnamed.append(event_filter)

    def to_test(self, name: str) -> tuple[ParsedFilter, ...] | None:
        """The filters an event of this name must be tested against; None: it matches."""
        if name in self.names:
            return None
        return (*self.by_name.get(name, ()), *self.unnamed)


# What an event name calls for: (passes the include side without a test, the include filters
# to test otherwise, the exclude filters to test); None when an exclude filter drops it by name.
_Plan = tuple[bool, tuple[ParsedFilter, ...], tuple[ParsedFilter, ...]] | None
_MAX_PLANS = 1024  # Asterisk has ~200 event names


class FilterSet:
    """One session's filters (manager.conf's, then its Filter actions'), as should_send_event
    applies them: what each event name calls for is worked out once, at its first event."""

    __slots__ = ("_exclude", "_include", "_plans")

    def __init__(self) -> None:
        self._include = _Side()
        self._exclude = _Side()
        self._plans: dict[str, _Plan] = {}

    def add(self, event_filter: ParsedFilter) -> None:
        """Add a parsed filter to the include or the exclude side."""
        (self._exclude if event_filter.exclude else self._include).add(event_filter)
        self._plans.clear()

    @property
    def empty(self) -> bool:
        """No filter at all: every event passes."""
        return not self._include.count and not self._exclude.count

    def passes(self, text: str, name: str | None = None) -> bool:
        """Whether the event is sent; ``name`` is its name when the caller already has it."""
        if name is None:
            name = event_name(text)
        try:
            plan = self._plans[name]
        except KeyError:
            plan = self._plan(name)
        if plan is None:
            return False
        included, includes, excludes = plan
        if not included:
            for event_filter in includes:
                if event_filter.matches(text):
                    break
            else:
                return False
        # Plain loops: this runs for every event of every call, and any() of a generator
        # costs more than the few tests it makes.
        for event_filter in excludes:
            if event_filter.matches(text):
                break
        else:
            return True
        return False

    def _plan(self, name: str) -> _Plan:
        if len(self._plans) >= _MAX_PLANS:
            self._plans.clear()
        excludes = self._exclude.to_test(name) if self._exclude.count else ()
        plan: _Plan = None
        if excludes is not None:
            includes = self._include.to_test(name) if self._include.count else None
            plan = (includes is None, includes or (), excludes)
        self._plans[name] = plan
        return plan
