"""Counters, gauges and histograms that the event loop's thread alone updates.

prometheus_client's metrics may be updated from any thread: each ``inc()`` takes a lock,
each ``observe()`` walks its buckets in Python, and both check on every call that the
metric has no labels left to give. The figures a call moves (a dozen updates a call) are
all moved on the event loop's thread, and scraped there too (``GET /metrics`` is served by
the same loop), so here a series is a plain number: ``inc()`` is one addition, and
``observe()`` one bisection. They are exported through prometheus_client's collector
interface, with the names, help, labels and bucket edges its own metrics would have.

Not for a figure moved from another thread: that one stays a prometheus_client metric.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterable, Sequence
from typing import Any

from prometheus_client import CollectorRegistry
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

__all__ = ["LoopCounter", "LoopGauge", "LoopHistogram", "LoopMetric"]


class _Value:
    """One series of a counter or gauge."""

    __slots__ = ("value",)

    def __init__(self) -> None:
        self.value = 0.0

    def inc(self, amount: float = 1.0) -> None:
        """Add ``amount``."""
        self.value += amount

    def dec(self, amount: float = 1.0) -> None:
        """Take ``amount`` away (gauges only)."""
        self.value -= amount


class _Buckets:
    """One series of a histogram: a count per bucket (not cumulative), and the sum."""

    __slots__ = ("bounds", "counts", "sum")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)  # the last one is +Inf's
        self.sum = 0.0

    def observe(self, amount: float) -> None:
        """Count ``amount`` in the first bucket whose upper edge is at least ``amount``."""
        self.counts[bisect_left(self.bounds, amount)] += 1
        self.sum += amount


class _Family(Collector):
    """The series of one metric, by label values, and what is common to its kinds."""

    def __init__(
        self,
        name: str,
        documentation: str,
        labelnames: Sequence[str] = (),
        *,
        registry: CollectorRegistry,
    ) -> None:
        self._name = name
        self._documentation = documentation
        self._labelnames = tuple(labelnames)
        self._series: dict[tuple[str, ...], Any] = {}
        # An unlabelled metric is its own one series, from the start (as prometheus_client's).
        self._one = None if self._labelnames else self._child(())
        registry.register(self)

    def labels(self, *values: str, **named: str) -> Any:
        """The series of these label values (given in order, or by name), made at 0 the first
        time."""
        if named:
            if values or set(named) != set(self._labelnames):
                raise ValueError(f"{self._name}: labels must be {self._labelnames}")
            values = tuple(named[name] for name in self._labelnames)
        elif len(values) != len(self._labelnames):
            raise ValueError(f"{self._name}: labels must be {self._labelnames}")
        key = tuple(str(value) for value in values)
        series = self._series.get(key)
        if series is None:
            series = self._child(key)
        return series

    def _child(self, key: tuple[str, ...]) -> Any:
        series = self._series[key] = self._new()
        return series

    def _new(self) -> Any:
        raise NotImplementedError

    def describe(self) -> Iterable[Metric]:
        """The metric's name and kind, so the registry can refuse a duplicate name."""
        return [self._family()]

    def _family(self) -> Metric:
        raise NotImplementedError


class LoopCounter(_Family):
    """A counter (exported with ``_total``) of plain numbers, updated on the loop only."""

    def _new(self) -> _Value:
        return _Value()

    def inc(self, amount: float = 1.0) -> None:
        """Add ``amount`` to the unlabelled counter."""
        assert self._one is not None, f"{self._name} has labels"
        self._one.inc(amount)

    def _family(self) -> CounterMetricFamily:
        return CounterMetricFamily(self._name, self._documentation, labels=self._labelnames)

    def collect(self) -> Iterable[Metric]:
        """Every series, read now."""
        family = self._family()
        for key, series in self._series.items():
            family.add_metric(list(key), series.value)
        return [family]


class LoopGauge(LoopCounter):
    """A gauge of plain numbers (``inc`` and ``dec``), updated on the loop only."""

    def dec(self, amount: float = 1.0) -> None:
        """Take ``amount`` from the unlabelled gauge."""
        assert self._one is not None, f"{self._name} has labels"
        self._one.dec(amount)

    def _family(self) -> GaugeMetricFamily:  # type: ignore[override]
        return GaugeMetricFamily(self._name, self._documentation, labels=self._labelnames)


class LoopHistogram(_Family):
    """A histogram of plain counts, updated on the loop only; ``buckets`` are the upper
    edges, +Inf added."""

    def __init__(
        self,
        name: str,
        documentation: str,
        labelnames: Sequence[str] = (),
        *,
        buckets: Sequence[float],
        registry: CollectorRegistry,
    ) -> None:
        bounds = tuple(float(bound) for bound in buckets)
        if list(bounds) != sorted(set(bounds)) or bounds[-1:] == (float("inf"),):
            raise ValueError(f"{name}: buckets must be distinct, ascending, without +Inf")
        self._bounds = bounds
        # The edges as prometheus_client writes its own histograms' ("0.005", "10.0", "+Inf").
        self._edges = [floatToGoString(bound) for bound in (*bounds, float("inf"))]  # type: ignore[no-untyped-call]
        super().__init__(name, documentation, labelnames, registry=registry)

    def _new(self) -> _Buckets:
        return _Buckets(self._bounds)

    def observe(self, amount: float) -> None:
        """Count ``amount`` in the unlabelled histogram."""
        assert self._one is not None, f"{self._name} has labels"
        self._one.observe(amount)

    def _family(self) -> HistogramMetricFamily:
        return HistogramMetricFamily(self._name, self._documentation, labels=self._labelnames)

    def collect(self) -> Iterable[Metric]:
        """Every series, read now: cumulative counts per bucket edge, the count and the sum."""
        family = self._family()
        for key, series in self._series.items():
            total, buckets = 0, []
            for edge, count in zip(self._edges, series.counts, strict=True):
                total += count
                buckets.append((edge, total))
            family.add_metric(list(key), buckets, series.sum)
        return [family]


#: Any of the three.
LoopMetric = LoopCounter | LoopGauge | LoopHistogram
