"""The service configuration: the shipped file loads; mistakes name file, line and key."""

from __future__ import annotations

from pathlib import Path

import pytest

from ivr.config import ConfigError, load_config

SHIPPED = Path(__file__).parents[2] / "config" / "hotline.yaml"
ENV = {"HOTLINE_AMI_SECRET": "s3cret-ami", "HOTLINE_ADMIN_TOKEN": "t0ken"}


def test_the_shipped_config_loads() -> None:
    """config/hotline.yaml loads with its secrets from the environment; paths are resolved."""
    config = load_config(SHIPPED, ENV)
    assert config.ami[0].secret == "s3cret-ami" and config.http.token == "t0ken"
    assert config.dialplans.resolve() == (SHIPPED.parents[1] / "dialplans").resolve()
    assert "s3cret-ami" not in repr(config) and "t0ken" not in repr(config)


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "hotline.yaml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("fastagi:\n  port: 4573\n  colour: red\n", ":3:3: fastagi.colour: unknown key"),
        ("fastagi:\n  port: 99999\n", ":2:3: fastagi.port: must be a whole number"),
        ("ami:\n  - node: a\n    host: h\n    username: u\n    secret: plain\n",
         ":5:5: ami.0.secret: secrets are not written here"),
        ("ami:\n  - node: a\n    host: h\n    username: u\n    secret_env: NOPE\n",
         ":5:5: ami.0.secret_env: environment variable NOPE is not set"),
        ("ami:\n  - node: a\n    username: u\n", ":2:5: ami.0: missing key 'host'"),
        ("fastagi: [1, 2\n", ":2:1:"),
        ("tickets:\n  backend: oracle\n", ":2:3: tickets.backend: unknown backend"),
    ],
)
def test_mistakes_name_file_line_and_key(tmp_path: Path, text: str, message: str) -> None:
    """Each mistake stops start-up with the file, the line and the key path."""
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        load_config(path, {})
    assert str(caught.value).startswith(str(path))
    assert message in str(caught.value)
