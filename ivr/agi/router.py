"""Dispatch FastAGI sessions by script name: ``agi://host:4573/<script>``."""

from __future__ import annotations

from collections.abc import Mapping

import structlog

from ivr.agi.server import AgiHandler
from ivr.agi.session import AgiSession


class ScriptRouter:
    """Runs the handler registered for the session's ``agi_network_script``.

    An unknown script is answered by closing the session at once: the dialplan then sees
    AGISTATUS=SUCCESS with no route set and takes its fallback, so the caller still reaches
    a human.
    """

    def __init__(self, routes: Mapping[str, AgiHandler]) -> None:
        self._routes = dict(routes)
        self._log = structlog.get_logger("ivr.agi")

    async def __call__(self, session: AgiSession) -> None:
        script = session.env.network_script.split("?", 1)[0].strip("/")
        handler = self._routes.get(script)
        if handler is None:
            self._log.warning(
                "fastagi.unknown_script", script=script, uniqueid=session.env.uniqueid
            )
            return
        await handler(session)
