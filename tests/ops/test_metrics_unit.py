"""The Metrics object: helpers that keep related series in step, scrape-time readings."""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from ivr.metrics import Metrics


@pytest.fixture
def registry() -> CollectorRegistry:
    """A fresh registry: metrics never go to prometheus_client's global one."""
    return CollectorRegistry()


def _value(registry: CollectorRegistry, name: str, **labels: str) -> float | None:
    return registry.get_sample_value(name, labels)


def test_a_queue_call_moves_counter_histogram_and_gauge_together(
    registry: CollectorRegistry,
) -> None:
    """A caller answered after 12 s counts as answered, within 15 s, and no longer waiting."""
    metrics = Metrics(registry)
    metrics.queue_call_joined("hotline-agents")
    metrics.queue_call_joined("hotline-agents")
    assert _value(registry, "hotline_queue_waiting", queue="hotline-agents") == 2
    metrics.queue_call_left("hotline-agents", "answered", 12.0)
    metrics.queue_call_left("hotline-agents", "abandoned", 40.0)
    queue = {"queue": "hotline-agents"}
    assert _value(registry, "hotline_queue_waiting", **queue) == 0
    assert _value(registry, "hotline_queue_calls_total", result="answered", **queue) == 1
    assert _value(registry, "hotline_queue_calls_total", result="abandoned", **queue) == 1
    answered = {"result": "answered", **queue}
    assert _value(registry, "hotline_queue_wait_seconds_bucket", le="10.0", **answered) == 0
    assert _value(registry, "hotline_queue_wait_seconds_bucket", le="15.0", **answered) == 1
    assert _value(registry, "hotline_queue_wait_seconds_sum", result="abandoned", **queue) == 40


def test_an_unknown_queue_result_is_refused(registry: CollectorRegistry) -> None:
    """Results come from a closed set, so the label cannot grow without bound."""
    with pytest.raises(ValueError, match="answered"):
        Metrics(registry).queue_call_left("hotline-agents", "transferred", 1.0)  # type: ignore[arg-type]


def test_queue_series_are_kept_apart_once_looked_up(registry: CollectorRegistry) -> None:
    """Each (queue, result) moves its own series, the second time as the first; a result
    outside the set is refused even once the queue's other series are known."""
    metrics = Metrics(registry)
    for _ in range(2):
        for queue in ("hotline-agents", "water"):
            metrics.queue_call_joined(queue)
            metrics.queue_call_joined(queue)
            metrics.queue_call_left(queue, "answered", 3.0)
            metrics.queue_call_left(queue, "exited", -1.0)
    metrics.queue_call_left("water", "abandoned", 20.0)
    for queue in ("hotline-agents", "water"):
        assert _value(registry, "hotline_queue_calls_total", queue=queue, result="answered") == 2
        assert _value(registry, "hotline_queue_calls_total", queue=queue, result="exited") == 2
        exited = {"queue": queue, "result": "exited"}
        assert _value(registry, "hotline_queue_wait_seconds_sum", **exited) == 0
    assert _value(registry, "hotline_queue_waiting", queue="hotline-agents") == 0
    assert _value(registry, "hotline_queue_waiting", queue="water") == -1
    abandoned = {"queue": "water", "result": "abandoned"}
    assert _value(registry, "hotline_queue_wait_seconds_sum", **abandoned) == 20
    assert _value(registry, "hotline_queue_calls_total", queue="hotline-agents",
                  result="abandoned") is None
    with pytest.raises(ValueError, match="answered"):
        metrics.queue_call_left("water", "transferred", 1.0)  # type: ignore[arg-type]


def test_a_reload_replaces_the_dialplan_version(registry: CollectorRegistry) -> None:
    """After a reload only the new version is exported; a refused reload leaves it and says so."""
    metrics = Metrics(registry)
    metrics.dialplan_loaded("2026-11-01")
    metrics.dialplan_reloaded("2026-11-20")
    assert _value(registry, "hotline_dialplan_info", version="2026-11-01") is None
    assert _value(registry, "hotline_dialplan_info", version="2026-11-20") == 1
    assert _value(registry, "hotline_dialplan_last_reload_successful") == 1
    metrics.dialplan_reloaded(None)
    assert _value(registry, "hotline_dialplan_info", version="2026-11-20") == 1
    assert _value(registry, "hotline_dialplan_last_reload_successful") == 0
    assert _value(registry, "hotline_dialplan_reloads_total", result="success") == 1
    assert _value(registry, "hotline_dialplan_reloads_total", result="failure") == 1


def test_declared_series_start_at_zero(registry: CollectorRegistry) -> None:
    """Declared services and queues export 0 before any event, so increase() sees the first one."""
    metrics = Metrics(registry)
    assert (
        _value(registry, "hotline_emergency_handoffs_total", service="police", result="all_failed")
        is None
    )
    metrics.declare(lines=["96119"], emergency_services=["police"], queues=["hotline-agents"],
                    ticket_backend="sqlite")
    assert (
        _value(registry, "hotline_emergency_handoffs_total", service="police", result="all_failed")
        == 0
    )
    assert (
        _value(registry, "hotline_queue_calls_total", queue="hotline-agents", result="abandoned")
        == 0
    )
    assert _value(registry, "hotline_tickets_total", backend="sqlite", result="failed") == 0
    assert _value(registry, "hotline_active_calls", line="96119") == 0


def test_scraped_counters_read_their_owner_at_scrape_time(registry: CollectorRegistry) -> None:
    """A counter kept by the FastAGI server or an AMI link is read when scraped, not copied."""
    metrics = Metrics(registry)
    assert _value(registry, "hotline_fastagi_rejected_connections_total") == 0

    class Server:
        rejected_connections = 0

    class Link:
        handler_errors = 2

    class Tracker:
        active_count = 6

    server = Server()
    metrics.watch_fastagi(server)
    metrics.watch_ami_node("pbx1", Link(), Tracker())
    server.rejected_connections = 5
    assert _value(registry, "hotline_fastagi_rejected_connections_total") == 5
    assert _value(registry, "hotline_ami_handler_errors_total", node="pbx1") == 2
    assert _value(registry, "hotline_ami_tracked_calls", node="pbx1") == 6
    metrics.ami_handler_errors.forget(node="pbx1")
    assert _value(registry, "hotline_ami_handler_errors_total", node="pbx1") is None
    with pytest.raises(ValueError, match="labels"):
        metrics.ami_handler_errors.read(lambda: 1, host="pbx1")


def test_the_delivery_worker_is_read_at_scrape_time(registry: CollectorRegistry) -> None:
    """Deliveries, outbox, tickets in doubt and dead letters follow the worker's own figures."""

    class Worker:
        delivered, failed, reconciled, pending, in_doubt, dead_total = 7, 2, 1, 4, 1, 0

    metrics = Metrics(registry)
    worker = Worker()
    metrics.watch_delivery(worker)
    worker.dead_total = 3
    assert _value(registry, "hotline_ticket_deliveries_total", result="delivered") == 7
    assert _value(registry, "hotline_ticket_deliveries_total", result="failed") == 2
    assert _value(registry, "hotline_ticket_deliveries_total", result="reconciled") == 1
    assert _value(registry, "hotline_ticket_outbox_pending") == 4
    assert _value(registry, "hotline_ticket_outbox_in_doubt") == 1
    assert _value(registry, "hotline_ticket_dead_letters") == 3


def test_readiness_is_evaluated_at_scrape_time(registry: CollectorRegistry) -> None:
    """hotline_ready follows its check: 1 while it holds, 0 once it fails."""
    metrics = Metrics(registry)
    linked = [True]
    metrics.watch_readiness([("ami", lambda: linked[0])])
    assert _value(registry, "hotline_ready", check="ami") == 1
    linked[0] = False
    assert _value(registry, "hotline_ready", check="ami") == 0


def test_two_services_in_one_process_do_not_collide() -> None:
    """Each Metrics lives on its own registry: two can coexist (no global state)."""
    first, second = CollectorRegistry(), CollectorRegistry()
    Metrics(first).calls.labels(line="12345", outcome="agent").inc()
    Metrics(second)
    assert _value(first, "hotline_calls_total", line="12345", outcome="agent") == 1
    assert _value(second, "hotline_calls_total", line="12345", outcome="agent") is None
    assert b"hotline_build_info" in generate_latest(second)


def test_child_is_the_labelled_series_looked_up_once(registry: CollectorRegistry) -> None:
    """child() counts into the same series as labels() and returns one object per series."""
    metrics = Metrics(registry)
    first = metrics.child(metrics.ivr_selections, "root", "2")
    assert metrics.child(metrics.ivr_selections, "root", "2") is first
    assert metrics.child(metrics.ivr_selections, "root", "3") is not first
    first.inc()
    metrics.ivr_selections.labels(menu="root", key="2").inc()
    assert _value(registry, "hotline_ivr_selections_total", menu="root", key="2") == 2
    assert metrics.child(metrics.calls, "root", "2") is not first  # per metric, not per values
