"""The admin API: live calls, tickets; every route needs the bearer token.

Handlers are thin: they read a service object from the app and turn its answer into JSON.
"""

from __future__ import annotations

import hmac
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import asdict
from datetime import datetime
from typing import Any, Protocol

from aiohttp import web

from ivr.ami.tracker import LiveCall
from ivr.reload import ReloadResult
from ivr.tickets.model import Ticket
from ivr.tickets.store import TicketStore

_PROTECTED_PREFIXES = ("/calls", "/tickets", "/admin")
_MAX_PAGE = 500


class LiveCalls(Protocol):
    """Where the admin API reads calls in progress from (one tracker per PBX node)."""

    def snapshot(self) -> list[LiveCall]: ...

    def get(self, linkedid: str) -> LiveCall | None: ...


def auth_middleware(token: str) -> Callable[..., Awaitable[web.StreamResponse]]:
    """Require ``Authorization: Bearer <token>`` on the admin routes.

    With no token configured the admin API is closed, not open: an operator must choose one.
    """

    @web.middleware
    async def check(
        request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        if request.path.startswith(_PROTECTED_PREFIXES):
            if not token:
                return _error(403, "the admin API is disabled: configure http.token_env")
            offered = request.headers.get("Authorization", "")
            expected = f"Bearer {token}"
            # Constant-time comparison: the token must not leak through response timing.
            if not hmac.compare_digest(offered.encode(), expected.encode()):
                return _error(401, "missing or wrong bearer token")
        return await handler(request)

    return check


def add_routes(
    app: web.Application,
    *,
    calls: LiveCalls,
    store: Callable[[], TicketStore],
    reload: Callable[[], Awaitable[ReloadResult]],
) -> None:
    """Register the admin routes on ``app``."""

    async def reload_dialplan(_: web.Request) -> web.Response:
        # No path is taken from the request: only the configured dialplan files are read.
        result = await reload()
        if not result.ok:
            return web.json_response(
                {
                    "error": "the new dialplan was refused; the old one keeps serving",
                    "version": result.version,
                    "problems": [str(p) for p in result.problems],
                },
                status=422,
            )
        return web.json_response({"version": result.version})

    async def list_calls(_: web.Request) -> web.Response:
        return web.json_response({"calls": [_call_json(call) for call in calls.snapshot()]})

    async def one_call(request: web.Request) -> web.Response:
        call = calls.get(request.match_info["linkedid"])
        if call is None:
            return _error(404, "no such call in progress")
        return web.json_response(_call_json(call))

    async def list_tickets(request: web.Request) -> web.Response:
        query = request.query
        try:
            limit = _bounded_int(query, "limit", 50, _MAX_PAGE)
            offset = _bounded_int(query, "offset", 0, 10**9)
            since = _timestamp(query, "since")
            until = _timestamp(query, "until")
        except ValueError as exc:
            return _error(400, str(exc))
        tickets = await store().query(
            line=query.get("line"),
            kind=query.get("kind"),
            disposition=query.get("disposition"),
            since=since,
            until=until,
            limit=limit,
            offset=offset,
        )
        return web.json_response(
            {"tickets": [ticket_json(t) for t in tickets], "limit": limit, "offset": offset}
        )

    async def one_ticket(request: web.Request) -> web.Response:
        ticket = await store().get(request.match_info["ticket_id"])
        if ticket is None:
            return _error(404, "no such ticket")
        return web.json_response(ticket_json(ticket))

    app.router.add_post("/admin/reload", reload_dialplan)
    app.router.add_get("/calls", list_calls)
    app.router.add_get("/calls/{linkedid}", one_call)
    app.router.add_get("/tickets", list_tickets)
    app.router.add_get("/tickets/{ticket_id}", one_ticket)


class AllNodes:
    """The live calls of every PBX node, as one view."""

    def __init__(self, trackers: Callable[[], Iterable[LiveCalls]]) -> None:
        self._trackers = trackers

    def snapshot(self) -> list[LiveCall]:
        """Every call in progress, oldest first."""
        calls = [call for tracker in self._trackers() for call in tracker.snapshot()]
        return sorted(calls, key=lambda call: call.started_monotonic)

    def get(self, linkedid: str) -> LiveCall | None:
        """One call in progress, whichever node it is on."""
        for tracker in self._trackers():
            call = tracker.get(linkedid)
            if call is not None:
                return call
        return None


def _call_json(call: LiveCall) -> dict[str, Any]:
    data = asdict(call)
    data.pop("started_monotonic")
    data["channels"] = list(call.channels)
    data["seconds"] = round(time.monotonic() - call.started_monotonic, 1)
    return data


def ticket_json(ticket: Ticket) -> dict[str, Any]:
    """A ticket as JSON: ISO 8601 times, the path as a list."""
    data = asdict(ticket)
    for key, value in data.items():
        if isinstance(value, datetime):
            data[key] = value.isoformat()
    data["ivr_path"] = list(ticket.ivr_path)
    data["disposition"] = ticket.disposition.value
    return data


def _bounded_int(query: Mapping[str, str], name: str, default: int, high: int) -> int:
    raw = query.get(name)
    if raw is None:
        return default
    if not raw.isdigit() or int(raw) > high:
        raise ValueError(f"{name} must be a whole number from 0 to {high}")
    return int(raw)


def _timestamp(query: Mapping[str, str], name: str) -> datetime | None:
    raw = query.get(name)
    if raw is None:
        return None
    try:
        value = datetime.fromisoformat(raw)
    except ValueError:
        raise ValueError(f"{name} must be an ISO 8601 time with an offset") from None
    if value.tzinfo is None:
        raise ValueError(f"{name} must be an ISO 8601 time with an offset")
    return value


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)
