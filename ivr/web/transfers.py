"""HTTP routes for live transfers: ``POST /calls/{linkedid}/transfer`` and ``.../three-way``.

Thin handlers: they find the call, check the body, and call :class:`LiveTransfers`. The
admin bearer token is checked by the app's middleware for every path under ``/calls``.

Answers: 200 when Asterisk confirmed; 400 for a bad body; 404 for no such call; 409 when
the call has no agent leg (attended, three-way) or Asterisk refused (nothing happened);
503 when the link is down (nothing was sent); 502 (link lost) or 504 (no answer in time)
with ``"outcome": "unknown"`` when the action was sent and may or may not have been done:
it is never re-sent, a person must look at the call.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from aiohttp import web

from call_transfer.live import (
    LiveTransfers,
    TransferConfirmed,
    TransferOutcomeUnknown,
    TransferRefused,
    TransferUnavailable,
)
from ivr.ami.tracker import LiveCall

__all__ = ["PoliceLink", "add_routes"]

_EXTEN = re.compile(r"[0-9A-Za-z*#+_-]{1,40}")
_CONTEXT = re.compile(r"[0-9A-Za-z_-]{1,80}")
_NUMBER = re.compile(r"[0-9]{3,20}")
_ACTION_TIMEOUT_S = 5.0
_MAX_RING_S = 60.0


class CallLookup(Protocol):
    """Where the routes find a call in progress (the admin API's view of every node)."""

    def get(self, linkedid: str) -> LiveCall | None: ...


@dataclass(frozen=True, slots=True)
class PoliceLink:
    """Where a one-key transfer to 110 goes (``"to": "110"``), and what a three-way call dials."""

    context: str = "hotline-110-link"
    exten: str = "110"
    number: str = "110"


def add_routes(
    app: web.Application,
    *,
    transfers: LiveTransfers | Callable[[], LiveTransfers],
    calls: CallLookup,
    police: PoliceLink = PoliceLink(),
    default_context: str = "hotline-transfer",
    action_timeout: float = _ACTION_TIMEOUT_S,
) -> None:
    """Register the transfer routes on ``app``; each AMI action waits ``action_timeout`` at most."""

    def service() -> LiveTransfers:
        return transfers if isinstance(transfers, LiveTransfers) else transfers()

    async def transfer(request: web.Request) -> web.Response:
        call = calls.get(request.match_info["linkedid"])
        if call is None:
            return _error(404, "no such call in progress")
        body = await _json_body(request)
        if body is None:
            return _error(400, "the body must be a JSON object")
        mode, to = body.get("mode"), str(body.get("to", ""))
        context = str(body.get("context") or default_context)
        if to == police.number and "context" not in body:
            context, to = police.context, police.exten
        if mode not in ("blind", "attended"):
            return _error(400, "mode must be 'blind' or 'attended'")
        if not _EXTEN.fullmatch(to) or not _CONTEXT.fullmatch(context):
            return _error(400, "'to' must be an extension and 'context' a context name")
        if mode == "blind":
            operation = service().blind(
                call.node, _caller_leg(call), context=context, exten=to, timeout=action_timeout
            )
        else:
            agent = _agent_leg(call)
            if not agent:
                return _error(409, "the call has no agent leg to transfer from")
            operation = service().attended(
                call.node, agent, exten=to, context=context, timeout=action_timeout
            )
        return await _answer(operation)

    async def three_way(request: web.Request) -> web.Response:
        call = calls.get(request.match_info["linkedid"])
        if call is None:
            return _error(404, "no such call in progress")
        body = await _json_body(request)
        if body is None:
            return _error(400, "the body must be a JSON object")
        number = str(body.get("with", police.number))
        ring = body.get("ring_timeout", 30)
        if not _NUMBER.fullmatch(number):
            return _error(400, "'with' must be a phone number")
        if not isinstance(ring, int | float) or not 1 <= ring <= _MAX_RING_S:
            return _error(400, f"ring_timeout must be 1..{_MAX_RING_S:g} seconds")
        agent = _agent_leg(call)
        if not agent:
            return _error(409, "the call has no agent leg to join")
        return await _answer(
            service().three_way(
                call.node,
                call.linkedid,
                caller_channel=_caller_leg(call),
                agent_channel=agent,
                with_number=number,
                ring_timeout=float(ring),
                timeout=action_timeout,
            )
        )

    app.router.add_post("/calls/{linkedid}/transfer", transfer)
    app.router.add_post("/calls/{linkedid}/three-way", three_way)


def _caller_leg(call: LiveCall) -> str:
    # The tracker lists a call's channels oldest first: the caller's leg opened the call.
    return call.channels[0] if call.channels else ""


def _agent_leg(call: LiveCall) -> str:
    return call.channels[-1] if len(call.channels) > 1 else ""


async def _json_body(request: web.Request) -> dict[str, Any] | None:
    try:
        body = await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None
    return body if isinstance(body, dict) else None


async def _answer(operation: Any) -> web.Response:
    try:
        done: TransferConfirmed = await operation
    except TransferUnavailable as exc:
        return web.json_response({"outcome": "not_sent", "error": str(exc)}, status=503)
    except TransferRefused as exc:
        return web.json_response({"outcome": "refused", "error": str(exc)}, status=409)
    except TransferOutcomeUnknown as exc:
        status = 504 if exc.timed_out else 502
        return web.json_response({"outcome": "unknown", "error": str(exc)}, status=status)
    return web.json_response({"outcome": "done", "action": done.action, "message": done.message})


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)
