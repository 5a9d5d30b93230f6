"""The HTTP side: /metrics, /healthz, /readyz (the admin API builds on this application)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest


@dataclass(frozen=True, slots=True)
class Readiness:
    """One readiness check: a name and a function that says whether it holds now."""

    name: str
    check: Callable[[], bool]


def add_routes(
    app: web.Application,
    *,
    registry: CollectorRegistry,
    version: Callable[[], dict[str, str]],
    readiness: tuple[Readiness, ...],
) -> None:
    """Register the operational endpoints on ``app``."""

    async def metrics(_: web.Request) -> web.Response:
        return web.Response(
            body=generate_latest(registry), headers={"Content-Type": CONTENT_TYPE_LATEST}
        )

    async def healthz(_: web.Request) -> web.Response:
        return web.json_response({"status": "ok", "dialplan": version()})

    async def readyz(_: web.Request) -> web.Response:
        checks = {item.name: item.check() for item in readiness}
        ready = all(checks.values())
        return web.json_response(
            {"status": "ready" if ready else "not ready", "checks": checks},
            status=200 if ready else 503,
        )

    app.router.add_get("/metrics", metrics)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
