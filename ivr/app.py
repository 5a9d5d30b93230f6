"""Wiring: builds every part once, starts them in order and stops them in reverse.

The aiohttp ``Application`` is the container: each long-lived resource (ticket store, FastAGI
server, AMI links) is a ``cleanup_ctx`` generator, so start-up and shutdown order is declared in
one place and a failure half-way through start-up still closes what was opened.
"""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from typing import Any

import aiohttp
import structlog
from aiohttp import web
from prometheus_client import CollectorRegistry

from call_transfer.live import LiveTransfers
from ivr.aftercall.abandoned import QueueAbandons
from ivr.aftercall.callbacks import CallbackScheduler
from ivr.aftercall.survey import SurveyHandler, SurveyPrompts
from ivr.agi.router import ScriptRouter
from ivr.agi.server import FastAgiServer
from ivr.ami import AmiMessage
from ivr.ami.events import SERVICE_FILTERS
from ivr.ami.link import AmiLink
from ivr.ami.queues import QUEUE_EVENTS, QueueStats, WaitConsumer
from ivr.ami.tracker import TRACKED_EVENTS, CallEnd, CallTracker, EventConsumer
from ivr.callflow import CallHandler
from ivr.config import ConfigError, ServiceConfig
from ivr.dialplan.model import Dialplan
from ivr.metrics import Metrics
from ivr.reload import ActiveDialplan
from ivr.tickets.delivery import DeliveryWorker
from ivr.tickets.open311 import Open311Receiver
from ivr.tickets.postgres import PostgresTicketStore
from ivr.tickets.sqlite import SqliteTicketStore
from ivr.tickets.webhook import WebhookReceiver
from ivr.web import admin, transfers
from ivr.web.http import Readiness, add_routes

#: The ticket stores the service can run on; both are outboxes and after-call stores too.
Store = SqliteTicketStore | PostgresTicketStore

CONFIG = web.AppKey("config", ServiceConfig)
METRICS = web.AppKey("metrics", Metrics)
ACTIVE = web.AppKey("dialplan", ActiveDialplan)
STORE: web.AppKey[Store] = web.AppKey("store")
DELIVERY = web.AppKey("delivery", DeliveryWorker)
FASTAGI = web.AppKey("fastagi", FastAgiServer)
LINKS: web.AppKey[list[AmiLink]] = web.AppKey("links")
TRACKERS: web.AppKey[dict[str, CallTracker]] = web.AppKey("trackers")
CLOCK: web.AppKey[Callable[[], datetime]] = web.AppKey("clock")
ABANDONS = web.AppKey("abandons", QueueAbandons)

_log = structlog.get_logger("ivr.app")


def build_app(
    config: ServiceConfig,
    dialplan: Dialplan,
    registry: CollectorRegistry | None = None,
    clock: Callable[[], datetime] | None = None,
) -> web.Application:
    """The service as an aiohttp application; nothing runs until it is started.

    ``clock`` (timezone-aware) is what business hours and tickets are judged by; the wall
    clock unless given.
    """
    app = web.Application(middlewares=[admin.auth_middleware(config.http.token)])
    app[CLOCK] = clock if clock is not None else _utc_now
    app[CONFIG] = config
    metrics = Metrics(registry if registry is not None else CollectorRegistry())
    app[METRICS] = metrics
    app[ACTIVE] = ActiveDialplan(dialplan, (config.dialplans,), metrics, app[CLOCK])
    app[LINKS] = []
    app[TRACKERS] = {}
    app.cleanup_ctx.append(_ticket_store)
    app.cleanup_ctx.append(_ticket_delivery)
    app.cleanup_ctx.append(_fastagi_server)
    app.cleanup_ctx.append(_ami_links)
    app.cleanup_ctx.append(_callbacks)
    readiness = (
        Readiness("fastagi", lambda: FASTAGI in app and app[FASTAGI].port > 0),
        Readiness("ami", lambda: any(link.connected for link in app[LINKS])),
        Readiness("tickets", lambda: STORE in app and app[STORE].writable),
    )
    metrics.watch_readiness((check.name, check.check) for check in readiness)
    metrics.declare(ticket_backend=config.tickets.backend)
    add_routes(
        app,
        registry=metrics.registry,
        version=lambda: {
            "version": app[ACTIVE].current.version,
            "loaded_at": app[ACTIVE].loaded_at.isoformat(),
        },
        readiness=readiness,
    )
    live_calls = admin.AllNodes(lambda: app[TRACKERS].values())
    admin.add_routes(
        app, calls=live_calls, store=lambda: app[STORE], reload=lambda: app[ACTIVE].reload()
    )
    transfers.add_routes(
        app,
        transfers=LiveTransfers(
            lambda node: next((link for link in app[LINKS] if link.node == node), None)
        ),
        calls=live_calls,
        action_timeout=config.http.transfer_timeout_s,
    )
    return app


def _utc_now() -> datetime:
    return datetime.now(UTC)


async def _ticket_store(app: web.Application) -> AsyncIterator[None]:
    tickets = app[CONFIG].tickets
    store: Store
    if tickets.backend == "postgres":
        store = PostgresTicketStore(tickets.dsn, instance=tickets.instance)
    else:
        try:
            tickets.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            # The store starts anyway and reports itself not writable (readiness, metric, log):
            # calls must keep routing.
            _log.error(
                "ticket_store.folder_unusable", path=str(tickets.path.parent), error=str(exc)
            )
        store = SqliteTicketStore(tickets.path, instance=tickets.instance)
    await store.start()
    app[STORE] = store
    app[METRICS].watch_ticket_store(store)
    try:
        yield
    finally:
        await store.close()


async def _ticket_delivery(app: web.Application) -> AsyncIterator[None]:
    """Send committed tickets on to the work-order system, when one is configured."""
    delivery = app[CONFIG].tickets.delivery
    if delivery is None:
        yield
        return
    async with aiohttp.ClientSession() as http:
        receiver: Open311Receiver | WebhookReceiver
        if delivery.open311 is not None:
            receiver = Open311Receiver(http, delivery.open311)
        else:
            assert delivery.webhook is not None  # the config loader guarantees one of them
            receiver = WebhookReceiver(http, delivery.webhook)
        store = app[STORE]
        worker = DeliveryWorker(
            store, receiver, max_attempts=delivery.max_attempts, lease_s=delivery.lease_s
        )
        store.add_commit_listener(worker.notify)
        await worker.start()
        app[DELIVERY] = worker
        app[METRICS].watch_delivery(worker)
        try:
            yield
        finally:
            await worker.close()


async def _callbacks(app: web.Application) -> AsyncIterator[None]:
    """Call back missed calls and tickets due a review call, when configured."""
    config = app[CONFIG].callbacks
    if config is None or not app[LINKS]:
        yield
        return
    schedule = app[ACTIVE].current.schedules.get(config.schedule)
    if schedule is None:
        raise ConfigError(f"callbacks.schedule: no schedule {config.schedule!r} in the dialplan")
    scheduler = CallbackScheduler(
        app[STORE], app[LINKS][0], schedule, config.policy, clock=app[CLOCK]
    )
    await scheduler.start()
    try:
        yield
    finally:
        await scheduler.close()


async def _fastagi_server(app: web.Application) -> AsyncIterator[None]:
    config = app[CONFIG]
    handler = CallHandler(
        dialplan=lambda: app[ACTIVE].current,
        store=app[STORE],
        metrics=app[METRICS],
        node=config.ami[0].node if config.ami else "pbx1",
        clock=app[CLOCK],
    )
    server = FastAgiServer(
        ScriptRouter(
            {
                "ivr": handler,
                "survey": SurveyHandler(
                    app[STORE],
                    prompts=lambda language: _survey_prompts(app[ACTIVE].current, language),
                ),
            }
        ),
        host=config.fastagi.host,
        port=config.fastagi.port,
        allowed_peers=config.fastagi.allowed_peers,
    )
    await server.start()
    app[FASTAGI] = server
    app[METRICS].watch_fastagi(server)
    _log.info("fastagi.listening", host=config.fastagi.host, port=server.port)
    try:
        yield
    finally:
        await server.close()


def _survey_prompts(plan: Dialplan, language: str) -> SurveyPrompts:
    """The survey's sound files in the call's language, as Asterisk names them
    (``hotline/en/survey``); a language without the recording (or ``""``) gets zh's, as in
    the call itself."""
    defaults = SurveyPrompts()
    return SurveyPrompts(
        *(
            plan.sound(prompt, language) if prompt in plan.prompts else prompt
            for prompt in (defaults.question, defaults.invalid, defaults.thanks)
        )
    )


async def _ami_links(app: web.Application) -> AsyncIterator[None]:
    metrics = app[METRICS]
    abandons = QueueAbandons(app[STORE])
    app[ABANDONS] = abandons
    for node in app[CONFIG].ami:
        tracker = CallTracker(node.node)
        app[TRACKERS][node.node] = tracker
        link = AmiLink(
            host=node.host,
            port=node.port,
            username=node.username,
            secret=node.secret,
            node=node.node,
            ping_interval=node.ping_interval,
            # Asterisk drops everything else before it is written: ~125 events a call would
            # otherwise be parsed here only to be thrown away. The generated manager.conf does
            # this with eventfilter lines; the Filter action needs the 'system' write class.
            event_filters=SERVICE_FILTERS if node.send_filter else (),
            on_connected=_on_connected(metrics, tracker, abandons),
            on_disconnected=_on_disconnected(metrics),
            on_retry=_on_retry(metrics),
        )
        link.subscribe("*", event_consumers(metrics, tracker, abandons.on_call_end, node.node))
        metrics.ami_connected.labels(node=node.node).set(0)
        metrics.watch_ami_node(node.node, link, tracker)
        app[LINKS].append(link)
        await link.start()
    try:
        yield
    finally:
        links: list[AmiLink] = app[LINKS]
        for link in reversed(links):
            await link.close()
        await abandons.drain()


def event_consumers(
    metrics: Metrics, tracker: CallTracker, on_call_end: Callable[[CallEnd], object], node: str
) -> Callable[[AmiMessage], None]:
    """The handler of every event of one AMI node: counted, then given to the consumers of its
    name only; ``on_call_end`` gets each call the tracker closes. (The AMI ingest benchmark
    measures this very handler.)

    The event name is looked up once in a table built here, straight to the tracker's and the
    queue figures' handlers of that name: the ~20 events of a call that neither reads cost a
    count and one dict lookup. An event both read has its ``Uniqueid`` read once for both (a
    ``QueueCallerJoin`` its ``Queue`` too).
    """
    received = 0  # this node's events: hotline_ami_events_total, read when scraped
    metrics.ami_events.read(lambda: received, node=node)
    queues = QueueStats()

    def joined(event: AmiMessage) -> None:
        uniqueid, queue = event.get("Uniqueid"), event.get("Queue")
        tracker.joined_queue(event, uniqueid, queue)
        queues.join(uniqueid, queue)
        metrics.queue_call_joined(queue)

    def waits(wait: WaitConsumer) -> Callable[[AmiMessage], None]:
        def consume(event: AmiMessage) -> None:
            left = wait(event, event.get("Uniqueid"))
            if left is not None:
                metrics.queue_call_left(left.queue, left.result, left.wait_seconds)

        return consume

    def both(track: EventConsumer, wait: WaitConsumer) -> Callable[[AmiMessage], None]:
        def consume(event: AmiMessage) -> None:
            uniqueid = event.get("Uniqueid")
            ended = track(event, uniqueid)
            if ended is not None:
                on_call_end(ended)
            left = wait(event, uniqueid)
            if left is not None:
                metrics.queue_call_left(left.queue, left.result, left.wait_seconds)

        return consume

    consumers: dict[str, Callable[[AmiMessage], object]] = {"QueueCallerJoin": joined}
    for name in (TRACKED_EVENTS | QUEUE_EVENTS) - {"QueueCallerJoin"}:
        track, wait = tracker.consumer(name), queues.consumer(name)
        if wait is None:
            # The tracker alone: only its Hangup returns a CallEnd, and Hangup is not here.
            assert track is not None
            consumers[name] = track
        elif track is None:
            consumers[name] = waits(wait)
        else:
            consumers[name] = both(track, wait)

    def on_event(event: AmiMessage) -> None:
        nonlocal received
        received += 1
        consumer = consumers.get(event.event)
        if consumer is not None:
            consumer(event)

    return on_event


def _on_connected(metrics: Metrics, tracker: CallTracker, abandons: QueueAbandons) -> Any:
    async def connected(link: AmiLink) -> None:
        metrics.ami_connected.labels(node=link.node).set(1)
        # Asterisk keeps no events for a client that was away: rebuild the live-call table,
        # and close out the calls that ended meanwhile as if their last events had come.
        listing = await link.send_action({"Action": "CoreShowChannels"})
        ended = tracker.resync(listing.events)
        for end in ended:
            abandons.on_call_end(end)
        _log.info(
            "ami.connected",
            node=link.node,
            live_calls=tracker.active_count,
            ended_while_away=len(ended),
        )

    return connected


def _on_disconnected(metrics: Metrics) -> Any:
    async def disconnected(link: AmiLink) -> None:
        metrics.ami_connected.labels(node=link.node).set(0)
        _log.warning("ami.disconnected", node=link.node)

    return disconnected


def _on_retry(metrics: Metrics) -> Any:
    def retry(link: AmiLink, attempt: int, delay: float) -> None:
        metrics.ami_reconnects.labels(node=link.node).inc()

    return retry


#: Collections of the middle generation between two full ones (CPython's default: 10).
_FULL_COLLECTION_EVERY = 100


async def start(app: web.Application, host: str, port: int) -> web.AppRunner:
    """Start every part of ``app`` and its HTTP listener; returns the runner to stop it with."""
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    return runner


def freeze_startup_objects() -> int:
    """Put what start-up made (modules, the dialplan, the wiring) out of the cyclic garbage
    collector's reach, and make its full collections rarer; the number of objects frozen.

    A full collection walks every object it tracks, on the event loop: with start-up's ~60,000
    objects it took 25-45 ms under load (1,000 held calls), a pause felt by every caller
    waiting for the next prompt. Frozen, those objects are not walked again: the full
    collections measured fell to 17-25 ms, the calls' own objects. A full collection then
    runs after 100 of the middle generation's instead of 10 (5 -> 1 over 6,000 menu calls with
    1,000 held): the calls' garbage is nearly all freed by reference counting, and the few
    cycles wait a little longer. For the service process (``hotline-ivr run``), once, after
    :func:`start`; a process that builds apps again and again (tests) would keep their garbage.
    """
    gc.collect()
    gc.freeze()
    young, middle, _full = gc.get_threshold()
    gc.set_threshold(young, middle, _FULL_COLLECTION_EVERY)
    return gc.get_freeze_count()


def http_port(runner: web.AppRunner) -> int:
    """The port the HTTP listener is bound to (useful with port 0)."""
    for address in runner.addresses:
        return int(address[1])
    raise RuntimeError("the HTTP listener is not started")
