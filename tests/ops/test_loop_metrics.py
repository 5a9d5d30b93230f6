"""The loop's own metrics export what prometheus_client's would, for the same updates."""

from __future__ import annotations

import random
from typing import Any

import pytest
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from ivr._loop_metrics import LoopCounter, LoopGauge, LoopHistogram

_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.5, 1.0, 15)


def _exposition(registry: CollectorRegistry) -> list[str]:
    """The text Prometheus scrapes, less prometheus_client's creation times."""
    text = generate_latest(registry).decode()
    return [line for line in text.splitlines() if "_created" not in line]


def test_the_same_exposition_as_prometheus_client() -> None:
    """Counters, gauges and histograms, labelled or not, moved alike: the same text."""
    theirs, ours = CollectorRegistry(), CollectorRegistry()
    pairs: list[tuple[Any, Any]] = [
        (Counter("x_calls", "Calls.", ["line", "outcome"], registry=theirs),
         LoopCounter("x_calls", "Calls.", ["line", "outcome"], registry=ours)),
        (Counter("x_errors", "Errors.", registry=theirs),
         LoopCounter("x_errors", "Errors.", registry=ours)),
        (Gauge("x_active", "Active.", ["line"], registry=theirs),
         LoopGauge("x_active", "Active.", ["line"], registry=ours)),
        (Histogram("x_wait_seconds", "Waits.", ["queue"], buckets=_BUCKETS, registry=theirs),
         LoopHistogram("x_wait_seconds", "Waits.", ["queue"], buckets=_BUCKETS, registry=ours)),
        (Histogram("x_key_seconds", "Keys.", buckets=_BUCKETS, registry=theirs),
         LoopHistogram("x_key_seconds", "Keys.", buckets=_BUCKETS, registry=ours)),
    ]
    draw = random.Random(12345)
    # Values on the bucket edges too: an edge counts in its own bucket ("le").
    amounts = [*_BUCKETS, 0.0, 0.0001, 0.0007, 0.003, 0.7, 14.999, 15.0001, 600.0]
    for _ in range(500):
        calls, errors, active, wait, key = pairs
        line = draw.choice(["12345", "96119"])
        calls[0].labels(line, "agent").inc()
        calls[1].labels(line, "agent").inc()
        calls[0].labels(line=line, outcome="abandoned").inc(2)
        calls[1].labels(line=line, outcome="abandoned").inc(2)
        if draw.random() < 0.1:
            errors[0].inc()
            errors[1].inc()
        leaves = draw.random() < 0.7
        for metric in active:
            metric.labels(line).inc()
            if leaves:
                metric.labels(line).dec()
        amount = draw.choice(amounts)
        queue = draw.choice(["hotline-agents", "water"])
        wait[0].labels(queue).observe(amount)
        wait[1].labels(queue=queue).observe(amount)
        key[0].observe(amount)
        key[1].observe(amount)
    assert _exposition(ours) == _exposition(theirs)


def test_labels_are_checked_and_a_series_exists_at_zero_once_named() -> None:
    """Wrong labels are refused; a series named is exported at 0; bad buckets and a name
    taken are refused."""
    registry = CollectorRegistry()
    calls = LoopCounter("x_calls", "Calls.", ["line", "outcome"], registry=registry)
    with pytest.raises(ValueError, match="labels must be"):
        calls.labels("12345")
    with pytest.raises(ValueError, match="labels must be"):
        calls.labels(line="12345", result="agent")
    calls.labels(line="12345", outcome="agent")
    assert registry.get_sample_value("x_calls_total", {"line": "12345", "outcome": "agent"}) == 0
    with pytest.raises(ValueError, match="ascending"):
        LoopHistogram("x_seconds", "S.", buckets=(1.0, 0.5), registry=registry)
    with pytest.raises(ValueError, match="Duplicated"):  # a name taken
        LoopCounter("x_calls", "Again.", registry=registry)
