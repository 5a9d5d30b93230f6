"""The doors an attacker would try: /admin/reload names no file, secrets stay out of logs and
error messages, and the HTTP and FastAGI listeners default to loopback."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import aiohttp
import pytest

from ivr.app import build_app, http_port, start
from ivr.config import ConfigError, FastAgiConfig, HttpConfig, ServiceConfig, load_config
from ivr.dialplan import load_dialplan
from ivr.simpbx import SimulatedPbx
from tests.reliability.service_process import (
    ADMIN_TOKEN,
    AMI_SECRET,
    DIALPLANS,
    free_port,
    spawn,
    write_config,
)

WRONG_SECRET = "wrong-secret-7d41aa"


async def test_admin_reload_reads_only_the_configured_folder(tmp_path: Path) -> None:
    """Whatever a reload request names (query, JSON body, form), only the configured folder is
    read: the version served is the configured folder's, never the named one's."""
    configured, other = tmp_path / "configured", tmp_path / "other"
    shutil.copytree(DIALPLANS, configured)
    shutil.copytree(DIALPLANS, other)
    (other / "hotline.yaml").write_text(
        (other / "hotline.yaml").read_text(encoding="utf-8") + "# another version\n",
        encoding="utf-8",
    )
    (configured / "hotline.yaml").write_text(
        (configured / "hotline.yaml").read_text(encoding="utf-8") + "# edited in place\n",
        encoding="utf-8",
    )
    expected = load_dialplan([configured]).version
    elsewhere = load_dialplan([other]).version
    config = ServiceConfig(http=HttpConfig(host="127.0.0.1", port=0, token=ADMIN_TOKEN),
                           fastagi=FastAgiConfig(port=0), dialplans=configured)  # fmt: skip
    app = build_app(config, load_dialplan([DIALPLANS]))
    runner = await start(app, "127.0.0.1", 0)
    url = f"http://127.0.0.1:{http_port(runner)}/admin/reload"
    named = str(other)
    headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    try:
        async with aiohttp.ClientSession(headers=headers) as session:
            answers = []
            for request in (
                session.post(url, params={"path": named, "dialplans": named, "file": named}),
                session.post(url, json={"path": named, "paths": [named], "dialplans": named}),
                session.post(url, data={"path": f"{named}/hotline.yaml"}),
                session.post(f"{url}/..%2F..%2Fetc%2Fpasswd"),
            ):
                async with request as reply:
                    answers.append((reply.status, await reply.text()))
    finally:
        await runner.cleanup()
    assert answers[:3] == [(200, json.dumps({"version": expected}))] * 3
    assert answers[3][0] == 404
    assert expected != elsewhere


async def test_wrong_ami_secret_stays_out_of_the_log(tmp_path: Path) -> None:
    """A refused AMI login is logged, and neither the secret tried nor the admin token is."""
    async with SimulatedPbx(agi_port=0, ami_secret=AMI_SECRET) as pbx:
        port = free_port()
        service = await spawn(write_config(tmp_path, pbx, http_port=port), pbx, http_port=port,
                              ami_secret=WRONG_SECRET, wait_ami=False)  # fmt: skip
        try:
            refused = await service.wait_until(
                lambda line: "refused" in str(line.get("event", "")), "a refused AMI login"
            )
        finally:
            await service.stop()
    assert "sim" in refused["event"]
    log = "\n".join(service.raw)
    assert WRONG_SECRET not in log and ADMIN_TOKEN not in log and AMI_SECRET not in log


@pytest.mark.parametrize(
    ("ami_lines", "where"),
    [
        ("secret: inline-s3cret-value", "ami.0.secret"),  # refused: secrets are not inline
        ("secret_env: HOTLINE_AMI_SECRET\n    ping_interval: nope", "ami.0.ping_interval"),
        ("secret_file: missing-secret-file", "ami.0.secret_file"),
    ],
)
def test_config_errors_name_the_key_not_the_secret(
    tmp_path: Path, ami_lines: str, where: str
) -> None:
    """A configuration error names the file, line and key, and never a secret's value."""
    config = tmp_path / "hotline.yaml"
    config.write_text(
        "ami:\n  - node: pbx1\n    host: 127.0.0.1\n    username: hotline\n"
        f"    {ami_lines}\n", encoding="utf-8",
    )  # fmt: skip
    with pytest.raises(ConfigError) as raised:
        load_config(config, environ={"HOTLINE_AMI_SECRET": "env-s3cret-value"})
    message = str(raised.value)
    assert message.startswith(f"{config}:") and where in message
    assert "s3cret" not in message


def test_listeners_default_to_loopback(tmp_path: Path) -> None:
    """With no host configured, the admin API and FastAGI bind to 127.0.0.1 only."""
    config = tmp_path / "hotline.yaml"
    config.write_text("language: zh\n", encoding="utf-8")
    loaded = load_config(config, environ={})
    assert (loaded.http.host, loaded.fastagi.host) == ("127.0.0.1", "127.0.0.1")
    assert (HttpConfig().host, FastAgiConfig().host) == ("127.0.0.1", "127.0.0.1")
