"""Prometheus metrics of the service, on a registry passed in (never the global one).

Names follow the Prometheus conventions: a ``hotline_`` prefix, base units in the name
(``_seconds``), counters named without ``_total`` here because prometheus_client appends it,
and label values from closed sets only: lines, menus and queues come from the dialplan, keys
from DTMF, results from fixed lists below. The caller's number is never a label: it would make
one time series per citizen.

Most metrics are updated where the thing happens. Figures another object already keeps (the
FastAGI server's refused connections, an AMI link's handler errors, the ticket delivery worker's
counts) are read when Prometheus scrapes, through the ``watch_*`` methods (a
:class:`ScrapedCounter` or a gauge's ``set_function``), so no count is kept twice.

The figures every call moves (calls, keys, active calls, latencies, tickets, queue waits) are
:mod:`ivr._loop_metrics` metrics: plain numbers that only the event loop's thread updates and
scrapes, a dozen updates a call at a tenth of the cost of prometheus_client's locked ones.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from importlib import metadata
from typing import Any, Protocol

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, ProcessCollector
from prometheus_client.core import CounterMetricFamily, Metric
from prometheus_client.metrics import MetricWrapperBase
from prometheus_client.registry import Collector

from ivr._loop_metrics import LoopCounter, LoopGauge, LoopHistogram, LoopMetric
from ivr.ami.queues import QueueResult

__all__ = ["HANDOFF_RESULTS", "QUEUE_RESULTS", "Metrics", "QueueResult", "ScrapedCounter"]

# Latency buckets in seconds, dense below 10 ms where the service's own share of a call lives.
_FAST_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0)
_SESSION_BUCKETS = (0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300, 600)
# Queue waits: 15 s is a bucket edge because "answered within 15 s" is a service target.
_QUEUE_WAIT_BUCKETS = (5, 10, 15, 20, 30, 45, 60, 90, 120, 180, 300, 600)
# Ticket delivery to the work-order system: seconds when it is up, hours when it was down.
_DELIVERY_BUCKETS = (0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600, 14400)

QUEUE_RESULTS: tuple[QueueResult, ...] = ("answered", "abandoned", "exited")
HANDOFF_RESULTS = ("answered", "failed_over", "all_failed", "abandoned")
_CALL_ERROR_KINDS = ("agi", "internal")
_RELOAD_RESULTS = ("success", "failure")


class _StoreFigures(Protocol):
    @property
    def pending(self) -> int: ...


class _DeliveryFigures(Protocol):
    delivered: int
    failed: int
    reconciled: int
    pending: int
    in_doubt: int
    dead_total: int


class _LinkFigures(Protocol):
    @property
    def handler_errors(self) -> int: ...


class _TrackerFigures(Protocol):
    @property
    def active_count(self) -> int: ...


class _FastAgiFigures(Protocol):
    @property
    def rejected_connections(self) -> int: ...


class ScrapedCounter(Collector):
    """A counter that another object keeps, read from it each time Prometheus scrapes.

    Each label set gets a source with :meth:`read`; an unlabelled counter with no source
    exports 0, so the series exists (and alerts on it can be evaluated) from the start.
    """

    def __init__(
        self,
        name: str,
        documentation: str,
        labelnames: Iterable[str] = (),
        *,
        registry: CollectorRegistry,
    ) -> None:
        self._name = name
        self._documentation = documentation
        self._labelnames = tuple(labelnames)
        self._sources: dict[tuple[str, ...], Callable[[], float]] = {}
        registry.register(self)

    def read(self, source: Callable[[], float], **labels: str) -> None:
        """Export ``source()`` as the counter's value for ``labels`` from now on."""
        self._sources[self._key(labels)] = source

    def forget(self, **labels: str) -> None:
        """Stop exporting the series of ``labels`` (its owner is gone)."""
        self._sources.pop(self._key(labels), None)

    def describe(self) -> Iterable[Metric]:
        """The metric's name and type, so the registry can refuse a duplicate name."""
        return [CounterMetricFamily(self._name, self._documentation, labels=self._labelnames)]

    def collect(self) -> Iterable[Metric]:
        """One sample per source, read now."""
        family = CounterMetricFamily(self._name, self._documentation, labels=self._labelnames)
        if not self._labelnames and not self._sources:
            family.add_metric([], 0.0)
        for key, source in self._sources.items():
            family.add_metric(list(key), float(source()))
        return [family]

    def _key(self, labels: dict[str, str]) -> tuple[str, ...]:
        if set(labels) != set(self._labelnames):
            raise ValueError(
                f"{self._name}: labels must be {self._labelnames}, not {tuple(labels)}"
            )
        return tuple(labels[name] for name in self._labelnames)


class Metrics:
    """Every metric the service exports, registered on one ``CollectorRegistry``."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        # labels() takes a lock and checks its arguments on every call; a call looks up the
        # same few series (its line, its menus' keys) again and again. Bounded by the
        # dialplan's lines, menus and the twelve DTMF keys.
        self._children: dict[tuple[int, tuple[str, ...]], Any] = {}
        # The three series a caller leaving a queue moves, per (queue, result): one lookup.
        self._queue_left: dict[tuple[str, str], tuple[Any, Any, Any]] = {}
        self._init_calls(registry)
        self._init_emergency(registry)
        self._init_queues(registry)
        self._init_tickets(registry)
        self._init_ami(registry)
        self._init_service(registry)
        # Every series an alert watches exists at 0 from the start: `increase()` sees nothing
        # in a series born at 1, so the first emergency failure would not fire an alert.
        for kind in _CALL_ERROR_KINDS:
            self.call_errors.labels(kind=kind)
        for result in _RELOAD_RESULTS:
            self.dialplan_reloads.labels(result=result)

    def child(self, metric: MetricWrapperBase | LoopMetric, *values: str) -> Any:
        """``metric.labels(*values)``, looked up once per series; not for series ever removed."""
        key = (id(metric), values)
        found = self._children.get(key)
        if found is None:
            found = self._children[key] = metric.labels(*values)
        return found

    def declare(
        self,
        *,
        lines: Iterable[str] = (),
        emergency_services: Iterable[str] = (),
        queues: Iterable[str] = (),
        ticket_backend: str | None = None,
    ) -> None:
        """Create at 0 the series of the dialplan's lines, services and queues.

        Call it with the dialplan at start and after each reload, so alerts on these
        counters fire on the first event, not the second. ``queues`` are Asterisk queue names
        (what AMI queue events carry), not the dialplan's queue ids.
        """
        for line in lines:
            self.active_calls.labels(line=line)
        for service in emergency_services:
            for result in HANDOFF_RESULTS:
                self.emergency_handoffs.labels(service=service, result=result)
        for queue in queues:
            self.queue_waiting.labels(queue=queue)
            for queue_result in QUEUE_RESULTS:
                self.queue_calls.labels(queue=queue, result=queue_result)
                self.queue_wait_seconds.labels(queue=queue, result=queue_result)
        if ticket_backend is not None:
            for result in ("created", "duplicate", "failed"):
                self.tickets.labels(backend=ticket_backend, result=result)

    # -- calls and the IVR ----------------------------------------------------------------

    def _init_calls(self, registry: CollectorRegistry) -> None:
        self.calls = LoopCounter(
            "hotline_calls",
            "Calls that left the IVR, by line dialled and outcome.",
            ["line", "outcome"],
            registry=registry,
        )
        self.active_calls = LoopGauge(
            "hotline_active_calls",
            "Calls in the IVR now, by line dialled.",
            ["line"],
            registry=registry,
        )
        self.ivr_selections = LoopCounter(
            "hotline_ivr_selections",
            "Keys pressed in menus.",
            ["menu", "key"],
            registry=registry,
        )
        self.ivr_timeouts = LoopCounter(
            "hotline_ivr_timeouts",
            "Menus where the caller pressed nothing in time.",
            ["menu"],
            registry=registry,
        )
        self.key_to_command_seconds = LoopHistogram(
            "hotline_key_to_command_seconds",
            "From a caller's key arriving to the service's next command sent.",
            buckets=_FAST_BUCKETS,
            registry=registry,
        )
        self.agi_session_seconds = LoopHistogram(
            "hotline_agi_session_seconds",
            "Length of FastAGI sessions (time in the IVR).",
            buckets=_SESSION_BUCKETS,
            registry=registry,
        )
        self.call_errors = Counter(
            "hotline_call_errors",
            "Calls the service could not finish itself, by kind: agi (Asterisk failed or timed "
            "out) or internal (an exception in the service); the PBX fallback took the caller.",
            ["kind"],
            registry=registry,
        )
        self.fastagi_rejected_connections = ScrapedCounter(
            "hotline_fastagi_rejected_connections",
            "FastAGI connections closed before they became a call (peer not allowed, bad or "
            "missing AGI environment, server closing).",
            registry=registry,
        )

    # -- emergencies ----------------------------------------------------------------------

    def _init_emergency(self, registry: CollectorRegistry) -> None:
        self.emergency_handoffs = Counter(
            "hotline_emergency_handoffs",
            "Emergency hand-offs by service and result "
            "(answered, failed_over, all_failed, abandoned).",
            ["service", "result"],
            registry=registry,
        )
        self.emergency_handoff_seconds = Histogram(
            "hotline_emergency_handoff_seconds",
            "The service's part of an emergency hand-off: key received to Dial command sent.",
            buckets=_FAST_BUCKETS,
            registry=registry,
        )
        self.emergency_dial_attempts = Counter(
            "hotline_emergency_dial_attempts",
            "Dial attempts of emergency hand-offs, by service and Asterisk DIALSTATUS "
            "(ANSWER, BUSY, NOANSWER, CHANUNAVAIL, CONGESTION, CANCEL ...).",
            ["service", "status"],
            registry=registry,
        )

    # -- agent queues ---------------------------------------------------------------------

    def _init_queues(self, registry: CollectorRegistry) -> None:
        self.queue_calls = LoopCounter(
            "hotline_queue_calls",
            "Callers who left an agent queue, by queue and result: answered (an agent took "
            "the call), abandoned (the caller hung up waiting), exited (timeout or moved out).",
            ["queue", "result"],
            registry=registry,
        )
        self.queue_wait_seconds = LoopHistogram(
            "hotline_queue_wait_seconds",
            "Time callers waited in an agent queue, by queue and result; the 15 s bucket gives "
            "the share answered within 15 s.",
            ["queue", "result"],
            buckets=_QUEUE_WAIT_BUCKETS,
            registry=registry,
        )
        self.queue_waiting = LoopGauge(
            "hotline_queue_waiting",
            "Callers waiting in an agent queue now.",
            ["queue"],
            registry=registry,
        )

    def queue_call_joined(self, queue: str) -> None:
        """A caller entered ``queue`` (AMI ``QueueCallerJoin``)."""
        self.child(self.queue_waiting, queue).inc()

    def queue_call_left(self, queue: str, result: QueueResult, wait_seconds: float) -> None:
        """A caller left ``queue`` after ``wait_seconds``: counter and histogram move together."""
        # Series looked up once per (queue, result) (labels() takes a lock and checks its
        # arguments): the queues are the dialplan's, the results three.
        series = self._queue_left.get((queue, result))
        if series is None:
            series = self._queue_left[queue, result] = self._queue_left_series(queue, result)
        waiting, calls, wait = series
        waiting.dec()
        calls.inc()
        wait.observe(max(0.0, wait_seconds))

    def _queue_left_series(self, queue: str, result: QueueResult) -> tuple[Any, Any, Any]:
        if result not in QUEUE_RESULTS:
            raise ValueError(f"queue result {result!r} is not one of {QUEUE_RESULTS}")
        return (
            self.child(self.queue_waiting, queue),
            self.child(self.queue_calls, queue, result),
            self.child(self.queue_wait_seconds, queue, result),
        )

    # -- tickets --------------------------------------------------------------------------

    def _init_tickets(self, registry: CollectorRegistry) -> None:
        self.tickets = LoopCounter(
            "hotline_tickets",
            "Tickets written, by backend and result (created, duplicate, failed).",
            ["backend", "result"],
            registry=registry,
        )
        self.ticket_write_queue = Gauge(
            "hotline_ticket_write_queue",
            "Tickets submitted to the store and not yet committed.",
            registry=registry,
        )
        self.ticket_outbox_pending = Gauge(
            "hotline_ticket_outbox_pending",
            "Tickets committed and waiting for delivery to the work-order system.",
            registry=registry,
        )
        self.ticket_outbox_in_doubt = Gauge(
            "hotline_ticket_outbox_in_doubt",
            "Tickets whose last delivery attempt got no clear answer; looked up before a resend.",
            registry=registry,
        )
        self.ticket_dead_letters = Gauge(
            "hotline_ticket_dead_letters",
            "Tickets whose delivery was given up (last retry or a permanent refusal); each "
            "waits for an operator.",
            registry=registry,
        )
        self.ticket_deliveries = ScrapedCounter(
            "hotline_ticket_deliveries",
            "Ticket delivery attempts to the work-order system, by result (delivered, failed, "
            "reconciled: an attempt in doubt found delivered after all).",
            ["result"],
            registry=registry,
        )
        self.ticket_delivery_seconds = Histogram(
            "hotline_ticket_delivery_seconds",
            "From the end of a call to the work-order system acknowledging its ticket.",
            buckets=_DELIVERY_BUCKETS,
            registry=registry,
        )

    def watch_ticket_store(self, store: _StoreFigures) -> None:
        """Export the store's write queue, read at scrape time."""
        self.ticket_write_queue.set_function(lambda: store.pending)

    def watch_delivery(self, worker: _DeliveryFigures) -> None:
        """Export the delivery worker's counters and outbox gauges, read at scrape time."""
        self.ticket_deliveries.read(lambda: worker.delivered, result="delivered")
        self.ticket_deliveries.read(lambda: worker.failed, result="failed")
        self.ticket_deliveries.read(lambda: worker.reconciled, result="reconciled")
        self.ticket_outbox_pending.set_function(lambda: worker.pending)
        self.ticket_outbox_in_doubt.set_function(lambda: worker.in_doubt)
        self.ticket_dead_letters.set_function(lambda: worker.dead_total)

    # -- AMI ------------------------------------------------------------------------------

    def _init_ami(self, registry: CollectorRegistry) -> None:
        self.ami_connected = Gauge(
            "hotline_ami_connected",
            "1 while the AMI link to a PBX node is logged in.",
            ["node"],
            registry=registry,
        )
        self.ami_reconnects = Counter(
            "hotline_ami_reconnects",
            "AMI reconnect attempts per node.",
            ["node"],
            registry=registry,
        )
        # Counted in a plain int by each node's event handler (``ivr.app``) and read here at
        # scrape time: a Counter's inc() takes a lock, for every event the PBX sends.
        self.ami_events = ScrapedCounter(
            "hotline_ami_events",
            "AMI events received per node.",
            ["node"],
            registry=registry,
        )
        self.ami_tracked_calls = Gauge(
            "hotline_ami_tracked_calls",
            "Live calls on a PBX node, as the AMI call tracker sees them.",
            ["node"],
            registry=registry,
        )
        self.ami_handler_errors = ScrapedCounter(
            "hotline_ami_handler_errors",
            "AMI event handlers that raised, per node (a bug in the service, not the PBX).",
            ["node"],
            registry=registry,
        )

    def watch_ami_node(self, node: str, link: _LinkFigures, tracker: _TrackerFigures) -> None:
        """Export a node's AMI handler errors and tracked calls, read at scrape time."""
        self.ami_handler_errors.read(lambda: link.handler_errors, node=node)
        self.ami_tracked_calls.labels(node=node).set_function(lambda: tracker.active_count)

    def watch_fastagi(self, server: _FastAgiFigures) -> None:
        """Export the FastAGI server's refused connections, read at scrape time."""
        self.fastagi_rejected_connections.read(lambda: server.rejected_connections)

    # -- the service itself ---------------------------------------------------------------

    def _init_service(self, registry: CollectorRegistry) -> None:
        self.dialplan_info = Gauge(
            "hotline_dialplan_info",
            "The dialplan version serving calls (value is always 1).",
            ["version"],
            registry=registry,
        )
        self.dialplan_reloads = Counter(
            "hotline_dialplan_reloads",
            "Dialplan reloads, by result (success, failure).",
            ["result"],
            registry=registry,
        )
        self.dialplan_last_reload_successful = Gauge(
            "hotline_dialplan_last_reload_successful",
            "1 if the last dialplan load or reload succeeded, 0 if calls run on an older version.",
            registry=registry,
        )
        self.ready = Gauge(
            "hotline_ready",
            "1 while a readiness check of /readyz holds (ami, fastagi, tickets), else 0.",
            ["check"],
            registry=registry,
        )
        self.build_info = Gauge(
            "hotline_build_info",
            "The service's version (value is always 1).",
            ["version"],
            registry=registry,
        )
        self.build_info.labels(version=_package_version()).set(1)
        # CPU, memory, open files and start time of this process: restarts show as a new start.
        ProcessCollector(registry=registry)

    def dialplan_loaded(self, version: str) -> None:
        """The dialplan ``version`` serves calls now (at start or after a reload)."""
        self.dialplan_info.clear()  # one version at a time: the old label must go
        self.dialplan_info.labels(version=version).set(1)
        self.dialplan_last_reload_successful.set(1)

    def dialplan_reloaded(self, version: str | None) -> None:
        """Count a reload: ``version`` now serves calls, or None if the new files were refused."""
        if version is None:
            self.dialplan_reloads.labels(result="failure").inc()
            self.dialplan_last_reload_successful.set(0)
            return
        self.dialplan_reloads.labels(result="success").inc()
        self.dialplan_loaded(version)

    def watch_readiness(self, checks: Iterable[tuple[str, Callable[[], bool]]]) -> None:
        """Export each readiness check as ``hotline_ready{check}``, evaluated at scrape time."""
        for name, check in checks:
            self.ready.labels(check=name).set_function(_as_number(check))


def _as_number(check: Callable[[], bool]) -> Callable[[], float]:
    return lambda: 1.0 if check() else 0.0


def _package_version() -> str:
    try:
        return metadata.version("hotline-ivr")
    except metadata.PackageNotFoundError:  # run from a source tree that was never installed
        return "unknown"
