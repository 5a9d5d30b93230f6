"""Delivery to a work-order system speaking Open311 GeoReport v2.

``POST {base}/requests.json``, form-encoded: ``api_key``, ``jurisdiction_id`` (if configured),
``service_code`` (mapped from the dialled line and the request kind), ``phone``, ``first_name``
(the caller's name, when known), ``description``, a location (``address_string``: the ticket's
``extra["address"]`` or the configured default, since GeoReport requires one and a phone call
has none), and ``attribute[...]`` for the line, the IVR path, the recording, the urgency, the
SLA due time, the disposition, the ticket id and the Linkedid.

The answer is a JSON list whose first element has a ``service_request_id`` (created) or a
``token`` (queued; the id comes later from ``GET /tokens/{token}.json``); either is delivered and
kept as the reference, ``id:<...>`` or ``token:<...>``. 400, 403 and 404 are permanent refusals
(the ticket is dead-lettered with the server's description); 5xx, timeouts and connection
failures are retried.

GeoReport v2 has no idempotency key. The description therefore ends with the ticket id in
brackets, and a ticket whose earlier attempt is in doubt is first looked up:
``GET {base}/requests.json?service_code=..&start_date=..&end_date=..`` from the end of the call
until now, matching that marker. A server that creates requests asynchronously (token answers)
lists a request only once it is created: the lookup comes at the earliest when the
worker's lease has run out, which should exceed the server's queueing delay.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from types import MappingProxyType
from typing import Any

import aiohttp

from ivr.tickets.delivery import DeliveryResult
from ivr.tickets.model import Ticket

_PERMANENT = frozenset({400, 403, 404})


@dataclass(frozen=True, slots=True)
class ServiceCodes:
    """Which Open311 ``service_code`` a ticket gets: the first match of ``"<line>/<kind>"``,
    then the line, then the request kind, then ``default``."""

    default: str
    by_key: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))

    def resolve(self, line: str, kind: str) -> str:
        """The service code for a ticket from ``line`` of request kind ``kind``."""
        for key in (f"{line}/{kind}", line, kind):
            if key in self.by_key:
                return self.by_key[key]
        return self.default


@dataclass(frozen=True, slots=True)
class Open311Config:
    """An Open311 endpoint: ``base_url`` ends before ``/requests.json``."""

    base_url: str
    api_key: str = field(repr=False)
    service_codes: ServiceCodes
    jurisdiction_id: str = ""
    default_address: str = ""
    timeout_s: float = 10.0


def marker(ticket: Ticket) -> str:
    """The text that identifies the ticket inside a service request's description."""
    return f"[{ticket.ticket_id}]"


def request_form(ticket: Ticket, config: Open311Config) -> dict[str, str]:
    """The form fields of ``POST requests.json`` for ``ticket`` (pure; tested as a table)."""
    description = " ".join(
        part for part in (
            ticket.source_label, ticket.request_kind, ticket.extra.get("summary", ""),
            marker(ticket),
        ) if part
    )  # fmt: skip
    form = {
        "api_key": config.api_key,
        "service_code": config.service_codes.resolve(ticket.dialled_line, ticket.request_kind),
        "phone": ticket.caller_number,
        "description": description,
        "attribute[line]": ticket.dialled_line,
        "attribute[ivr_path]": "/".join(ticket.ivr_path),
        "attribute[recording]": ticket.recording,
        "attribute[urgency]": ticket.urgency,
        "attribute[sla_due]": ticket.sla_due.isoformat() if ticket.sla_due else "",
        "attribute[disposition]": str(ticket.disposition),
        "attribute[ticket_id]": ticket.ticket_id,
        "attribute[linkedid]": ticket.linkedid,
    }
    if config.jurisdiction_id:
        form["jurisdiction_id"] = config.jurisdiction_id
    if ticket.caller_name:
        form["first_name"] = ticket.caller_name
    address = ticket.extra.get("address", config.default_address)
    if address:
        form["address_string"] = address
    return form


def parse_created(body: str) -> str | None:
    """``id:<service_request_id>`` or ``token:<token>`` from a POST answer; None if neither."""
    try:
        data: Any = json.loads(body)
    except ValueError:
        return None
    first = data[0] if isinstance(data, list) and data else data
    if not isinstance(first, dict):
        return None
    for key, prefix in (("service_request_id", "id"), ("token", "token")):
        value = first.get(key)
        if isinstance(value, str | int) and str(value):
            return f"{prefix}:{value}"
    return None


def parse_error(body: str) -> str:
    """The ``description`` of a GeoReport error answer, or the start of the body."""
    try:
        data: Any = json.loads(body)
    except ValueError:
        return body[:200]
    first = data[0] if isinstance(data, list) and data else data
    if isinstance(first, dict) and "description" in first:
        return str(first["description"])
    return body[:200]


class Open311Receiver:
    """A ``Receiver`` speaking GeoReport v2 through the given (caller-owned) aiohttp session."""

    def __init__(self, session: aiohttp.ClientSession, config: Open311Config) -> None:
        self._session = session
        self._config = config
        self._timeout = aiohttp.ClientTimeout(total=config.timeout_s)

    async def deliver(self, ticket: Ticket) -> DeliveryResult:
        """POST the ticket as a new service request."""
        url = f"{self._config.base_url.rstrip('/')}/requests.json"
        try:
            async with self._session.post(
                url, data=request_form(ticket, self._config), timeout=self._timeout
            ) as response:
                status, body = response.status, await response.text()
        except TimeoutError:
            return DeliveryResult.retry("open311: no answer in time", in_doubt=True)
        except aiohttp.ClientConnectorError as exc:
            return DeliveryResult.retry(f"open311: cannot connect: {exc}")
        except aiohttp.ClientError as exc:
            return DeliveryResult.retry(f"open311: {exc}", in_doubt=True)
        if 200 <= status < 300:
            reference = parse_created(body)
            if reference is None:
                # Accepted, yet no id: it may exist; look it up rather than post it again.
                return DeliveryResult.retry("open311: answer without an id", in_doubt=True)
            return DeliveryResult.delivered(reference)
        error = f"open311: HTTP {status}: {parse_error(body)}"
        if status in _PERMANENT:
            return DeliveryResult.permanent(error)
        return DeliveryResult.retry(error)

    async def find_delivered(self, ticket: Ticket, reference: str) -> DeliveryResult | None:
        """Look the ticket's marker up among the service requests created since the call."""
        config = self._config
        params = {
            "service_code": config.service_codes.resolve(ticket.dialled_line, ticket.request_kind),
            "start_date": _w3c(ticket.ended_at - timedelta(minutes=5)),
            "end_date": _w3c(datetime.now(UTC) + timedelta(minutes=5)),
        }
        if config.jurisdiction_id:
            params["jurisdiction_id"] = config.jurisdiction_id
        url = f"{config.base_url.rstrip('/')}/requests.json"
        try:
            async with self._session.get(url, params=params, timeout=self._timeout) as response:
                status, body = response.status, await response.text()
        except (TimeoutError, aiohttp.ClientError) as exc:
            return DeliveryResult.retry(f"open311 lookup: {exc or 'no answer in time'}")
        if status != 200:
            return DeliveryResult.retry(f"open311 lookup: HTTP {status}")
        try:
            requests: Any = json.loads(body)
        except ValueError:
            return DeliveryResult.retry("open311 lookup: not JSON")
        if not isinstance(requests, list):
            return DeliveryResult.retry("open311 lookup: not a list")
        wanted = marker(ticket)
        for request in requests:
            if isinstance(request, dict) and wanted in str(request.get("description", "")):
                return DeliveryResult.delivered(f"id:{request.get('service_request_id', '')}")
        return None


def _w3c(moment: datetime) -> str:
    """A W3C date-time in UTC, as GeoReport's ``start_date`` and ``end_date`` expect."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
