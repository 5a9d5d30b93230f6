"""Prometheus metrics of the service, on a registry passed in (never the global one)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

# Latency buckets in seconds, dense below 10 ms where the service's own share of a call lives.
_FAST_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0)
_SESSION_BUCKETS = (0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300, 600)


class Metrics:
    """Every metric the service exports, registered on one ``CollectorRegistry``."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self.calls = Counter(
            "hotline_calls", "Calls that left the IVR, by line dialled and outcome.",
            ["line", "outcome"], registry=registry,
        )
        self.active_calls = Gauge(
            "hotline_active_calls", "Calls in the IVR now, by line dialled.",
            ["line"], registry=registry,
        )
        self.ivr_selections = Counter(
            "hotline_ivr_selections", "Keys pressed in menus.", ["menu", "key"], registry=registry,
        )
        self.ivr_timeouts = Counter(
            "hotline_ivr_timeouts", "Menus where the caller pressed nothing in time.",
            ["menu"], registry=registry,
        )
        self.emergency_handoffs = Counter(
            "hotline_emergency_handoffs",
            "Emergency hand-offs by service and result (answered, failed_over, all_failed, abandoned).",
            ["service", "result"], registry=registry,
        )
        self.emergency_handoff_seconds = Histogram(
            "hotline_emergency_handoff_seconds",
            "The service's part of an emergency hand-off: key received to Dial command sent.",
            buckets=_FAST_BUCKETS, registry=registry,
        )
        self.key_to_command_seconds = Histogram(
            "hotline_key_to_command_seconds",
            "From a caller's key arriving to the service's next command sent.",
            buckets=_FAST_BUCKETS, registry=registry,
        )
        self.agi_session_seconds = Histogram(
            "hotline_agi_session_seconds", "Length of FastAGI sessions (time in the IVR).",
            buckets=_SESSION_BUCKETS, registry=registry,
        )
        self.tickets = Counter(
            "hotline_tickets", "Tickets written, by backend and result (created, duplicate, failed).",
            ["backend", "result"], registry=registry,
        )
        self.ticket_outbox_pending = Gauge(
            "hotline_ticket_outbox_pending", "Tickets queued for the store and not yet committed.",
            registry=registry,
        )
        self.ami_connected = Gauge(
            "hotline_ami_connected", "1 while the AMI link to a PBX node is logged in.",
            ["node"], registry=registry,
        )
        self.ami_reconnects = Counter(
            "hotline_ami_reconnects", "AMI reconnect attempts per node.", ["node"], registry=registry,
        )
        self.ami_events = Counter(
            "hotline_ami_events", "AMI events received per node.", ["node"], registry=registry,
        )
        self.dialplan_info = Gauge(
            "hotline_dialplan_info", "The dialplan version serving calls (value is always 1).",
            ["version"], registry=registry,
        )
