"""A fake Open311 GeoReport v2 server on a loopback port: it counts what it receives and answers
as the test scripts it (created, token, 500, 400, slow, or hold the answer until released)."""

from __future__ import annotations

import asyncio
import itertools
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from aiohttp import web


@dataclass
class FakeOpen311:
    """State of the fake: requests created, POSTs seen, and how to answer the next ones."""

    created: dict[str, dict[str, str]] = field(default_factory=dict)  # by service_request_id
    posts: Counter[str] = field(default_factory=Counter)  # by attribute[ticket_id]
    lookups: int = 0
    answers: list[str] = field(default_factory=list)  # "created", "token", "500", "400", "hold"
    default_answer: str = "created"
    hold: asyncio.Event = field(default_factory=asyncio.Event)
    held: asyncio.Event = field(default_factory=asyncio.Event)
    changed: asyncio.Condition = field(default_factory=asyncio.Condition)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1001))
    url: str = ""

    async def wait_for(self, predicate: object) -> None:
        """Wait until ``predicate()`` holds; checked after every request."""
        async with self.changed:
            await self.changed.wait_for(predicate)  # type: ignore[arg-type]

    def by_ticket(self) -> Counter[str]:
        """How many service requests exist for each ticket id."""
        return Counter(r["attribute[ticket_id]"] for r in self.created.values())

    async def post_request(self, request: web.Request) -> web.Response:
        form = {k: str(v) for k, v in (await request.post()).items()}
        answer = self.answers.pop(0) if self.answers else self.default_answer
        self.posts[form.get("attribute[ticket_id]", "")] += 1
        try:
            if form.get("api_key") != "k3y":
                return web.json_response([{"code": 403, "description": "bad api_key"}], status=403)
            if answer == "400":
                return web.json_response(
                    [{"code": 400, "description": "service_code not found"}], status=400)
            if answer == "500":
                return web.json_response([{"code": 500, "description": "down"}], status=500)
            sid = str(next(self._ids))
            self.created[sid] = form  # stored before answering: a lost answer is "in doubt"
            if answer == "hold":
                self.held.set()
                await self.hold.wait()
            if answer == "token":
                return web.json_response([{"token": f"tok-{sid}"}])
            return web.json_response([{"service_request_id": sid, "service_notice": ""}])
        finally:
            async with self.changed:
                self.changed.notify_all()

    async def list_requests(self, request: web.Request) -> web.Response:
        self.lookups += 1
        code = request.query.get("service_code")
        found = [
            {"service_request_id": sid, "description": f["description"],
             "service_code": f["service_code"]}
            for sid, f in self.created.items() if f["service_code"] == code
        ]  # fmt: skip
        async with self.changed:
            self.changed.notify_all()
        return web.json_response(found)


@asynccontextmanager
async def fake_open311() -> AsyncIterator[FakeOpen311]:
    """Run the fake on 127.0.0.1, port 0; ``url`` is its GeoReport base."""
    fake = FakeOpen311()
    app = web.Application()
    app.router.add_post("/georeport/v2/requests.json", fake.post_request)
    app.router.add_get("/georeport/v2/requests.json", fake.list_requests)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    fake.url = f"http://127.0.0.1:{port}/georeport/v2"
    try:
        yield fake
    finally:
        fake.hold.set()
        await runner.cleanup()
