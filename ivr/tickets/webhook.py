"""Delivery to any system as a JSON POST carrying an ``Idempotency-Key`` (the call's Linkedid).

2xx: delivered (the body's ``id``, if any, is kept as the reference); 409: the receiver already
has this key, which is also delivered; 408 and 429: try later; any other 4xx: refused for good;
5xx, a timeout or a broken connection: try later. Because the key travels with every attempt, a
ticket in doubt is simply sent again: the receiver recognises it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from ivr.tickets.delivery import DeliveryResult
from ivr.tickets.model import Ticket

_TRANSIENT_4XX = frozenset({408, 425, 429})


@dataclass(frozen=True, slots=True)
class WebhookConfig:
    """Where and how tickets are posted."""

    url: str
    token: str = field(default="", repr=False)  # sent as "Authorization: Bearer <token>"
    timeout_s: float = 10.0


def ticket_payload(ticket: Ticket) -> dict[str, Any]:
    """The ticket as a JSON object: every field, times in ISO 8601 with their offset."""
    return {
        "ticket_id": ticket.ticket_id,
        "linkedid": ticket.linkedid,
        "uniqueid": ticket.uniqueid,
        "caller_number": ticket.caller_number,
        "caller_name": ticket.caller_name,
        "dialled_line": ticket.dialled_line,
        "source_label": ticket.source_label,
        "ivr_path": list(ticket.ivr_path),
        "request_kind": ticket.request_kind,
        "urgency": ticket.urgency,
        "sla_due": ticket.sla_due.isoformat() if ticket.sla_due is not None else None,
        "route_kind": ticket.route_kind,
        "route_target": ticket.route_target,
        "disposition": str(ticket.disposition),
        "started_at": ticket.started_at.isoformat(),
        "ended_at": ticket.ended_at.isoformat(),
        "emergency_service": ticket.emergency_service,
        "emergency_target": ticket.emergency_target,
        "emergency_result": ticket.emergency_result,
        "recording": ticket.recording,
        "node": ticket.node,
        "language": ticket.language,
        "satisfaction": ticket.satisfaction,
        "extra": dict(ticket.extra),
    }


class WebhookReceiver:
    """A ``Receiver`` posting JSON through the given (caller-owned) aiohttp session."""

    def __init__(self, session: aiohttp.ClientSession, config: WebhookConfig) -> None:
        self._session = session
        self._config = config

    async def deliver(self, ticket: Ticket) -> DeliveryResult:
        """POST the ticket with its Linkedid as ``Idempotency-Key``."""
        headers = {"Idempotency-Key": ticket.linkedid}
        if self._config.token:
            headers["Authorization"] = f"Bearer {self._config.token}"
        timeout = aiohttp.ClientTimeout(total=self._config.timeout_s)
        try:
            async with self._session.post(
                self._config.url, json=ticket_payload(ticket), headers=headers, timeout=timeout
            ) as response:
                status = response.status
                body = await response.text()
        except TimeoutError:
            return DeliveryResult.retry("webhook: no answer in time", in_doubt=True)
        except aiohttp.ClientConnectorError as exc:
            return DeliveryResult.retry(f"webhook: cannot connect: {exc}")
        except aiohttp.ClientError as exc:
            return DeliveryResult.retry(f"webhook: {exc}", in_doubt=True)
        if 200 <= status < 300:
            return DeliveryResult.delivered(_reference(response, body))
        if status == 409:
            return DeliveryResult.delivered("")
        error = f"webhook: HTTP {status}: {body[:200]}"
        if 400 <= status < 500 and status not in _TRANSIENT_4XX:
            return DeliveryResult.permanent(error)
        return DeliveryResult.retry(error)

    async def find_delivered(self, ticket: Ticket, reference: str) -> DeliveryResult | None:
        """Sending again is safe with the idempotency key: always send."""
        return None


def _reference(response: aiohttp.ClientResponse, body: str) -> str:
    if response.content_type != "application/json":
        return ""

    try:
        data = json.loads(body)
    except ValueError:
        return ""
    if isinstance(data, dict) and isinstance(data.get("id"), str | int):
        return str(data["id"])
    return ""
