"""The service's configuration file, validated once into frozen objects."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from types import MappingProxyType
from typing import Any

import yaml

from ivr.aftercall.callbacks import CallbackPolicy
from ivr.errors import HotlineError
from ivr.tickets.open311 import Open311Config, ServiceCodes
from ivr.tickets.webhook import WebhookConfig


class ConfigError(HotlineError):
    """The configuration file cannot be used; the message names file, line and key."""


@dataclass(frozen=True, slots=True)
class FastAgiConfig:
    """Where the FastAGI server listens and whom it accepts."""

    host: str = "127.0.0.1"
    port: int = 4573
    allowed_peers: frozenset[str] | None = None


@dataclass(frozen=True, slots=True)
class AmiNodeConfig:
    """One Asterisk node reached over AMI."""

    node: str
    host: str
    port: int
    username: str
    secret: str = field(repr=False)
    ping_interval: float = 10.0
    # Send the AMI Filters of ivr.ami.events at login. Off by default: they need the 'system'
    # write class and an Asterisk with advanced filtering (18.26/20.11/21.6/22.1 or later), and
    # the generated manager.conf filters events with eventfilter lines instead.
    send_filter: bool = False


@dataclass(frozen=True, slots=True)
class HttpConfig:
    """The listener of /metrics, health checks and the admin API."""

    host: str = "127.0.0.1"
    port: int = 8080
    token: str = field(default="", repr=False)
    # How long a live transfer waits for Asterisk's confirmation before answering "unknown".
    transfer_timeout_s: float = 5.0


@dataclass(frozen=True, slots=True)
class DeliveryConfig:
    """Where committed tickets are sent on: an Open311 endpoint or a JSON webhook."""

    receiver: str  # "open311" or "webhook"
    open311: Open311Config | None = None
    webhook: WebhookConfig | None = None
    max_attempts: int = 10
    lease_s: float = 120.0


@dataclass(frozen=True, slots=True)
class TicketsConfig:
    """Where tickets are written, and where they are delivered."""

    backend: str = "sqlite"
    path: Path = Path("var/tickets.sqlite3")
    dsn: str = field(default="", repr=False)  # PostgreSQL connection string (postgres backend)
    delivery: DeliveryConfig | None = None
    # This service instance's name in the store (default: the host name); instances sharing a
    # PostgreSQL store on one host need distinct names, so one never recovers another's calls.
    instance: str | None = None


@dataclass(frozen=True, slots=True)
class CallbacksConfig:
    """Calling back missed calls and tickets due a review call (回访)."""

    schedule: str  # a schedule id of the dialplan: callbacks are placed only in its hours
    policy: CallbackPolicy


@dataclass(frozen=True, slots=True)
class ServiceConfig:
    """The whole service configuration."""

    fastagi: FastAgiConfig = FastAgiConfig()
    ami: tuple[AmiNodeConfig, ...] = ()
    http: HttpConfig = HttpConfig()
    tickets: TicketsConfig = TicketsConfig()
    callbacks: CallbacksConfig | None = None
    dialplans: Path = Path("dialplans")
    language: str = "zh"


_SECTIONS = {"fastagi", "ami", "http", "tickets", "callbacks", "dialplans", "language"}


def load_config(path: Path, environ: Mapping[str, str] | None = None) -> ServiceConfig:
    """Read and validate ``path``; relative paths inside are taken from the file's folder."""
    env = os.environ if environ is None else environ
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else str(path)
        raise ConfigError(f"{where}: {exc.problem}") from None
    reader = _Reader(path, node)
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise reader.error((), "the file must be a mapping of sections")
    reader.no_unknown((), data, _SECTIONS)
    base = path.parent
    return ServiceConfig(
        fastagi=_fastagi(reader, data.get("fastagi") or {}),
        ami=tuple(
            _ami_node(reader, index, item, env)
            for index, item in enumerate(reader.list_of(("ami",), data.get("ami") or []))
        ),
        http=_http(reader, data.get("http") or {}, env),
        tickets=_tickets(reader, data.get("tickets") or {}, base, env),
        callbacks=_callbacks(reader, data["callbacks"]) if data.get("callbacks") else None,
        dialplans=base / str(data.get("dialplans", "dialplans")),
        language=str(data.get("language", "zh")),
    )


class _Reader:
    """Finds the line of a key path in the composed YAML, for error messages."""

    def __init__(self, path: Path, root: yaml.Node | None) -> None:
        self.path = path
        self.root = root

    def error(self, key_path: tuple[str | int, ...], message: str) -> ConfigError:
        node = self.root
        for key in key_path:
            found = None
            if isinstance(node, yaml.MappingNode):
                for k, v in node.value:
                    if k.value == key:
                        found = k if key == key_path[-1] else v
                        break
            elif (
                isinstance(node, yaml.SequenceNode)
                and isinstance(key, int)
                and key < len(node.value)
            ):
                found = node.value[key]
            if found is None:
                break
            node = found
        line = f":{node.start_mark.line + 1}:{node.start_mark.column + 1}" if node else ""
        dotted = ".".join(str(k) for k in key_path) or "(top)"
        return ConfigError(f"{self.path}{line}: {dotted}: {message}")

    def no_unknown(
        self, key_path: tuple[str | int, ...], data: Mapping[str, Any], known: set[str]
    ) -> None:
        for key in data:
            if key not in known:
                raise self.error((*key_path, key), f"unknown key (expected one of {sorted(known)})")

    def mapping(self, key_path: tuple[str | int, ...], value: Any) -> Mapping[str, Any]:
        if not isinstance(value, dict):
            raise self.error(key_path, "must be a mapping")
        return value

    def list_of(self, key_path: tuple[str | int, ...], value: Any) -> list[Any]:
        if not isinstance(value, list):
            raise self.error(key_path, "must be a list")
        return value

    def integer(self, key_path: tuple[str | int, ...], value: Any, low: int, high: int) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise self.error(key_path, f"must be a whole number from {low} to {high}")
        return value

    def boolean(self, key_path: tuple[str | int, ...], value: Any) -> bool:
        if not isinstance(value, bool):
            raise self.error(key_path, "must be true or false")
        return value

    def secret(
        self,
        key_path: tuple[str | int, ...],
        data: Mapping[str, Any],
        name: str,
        env: Mapping[str, str],
    ) -> str:
        """A secret from ``<name>_env`` (an environment variable) or ``<name>_file``.

        Never inline: a config file is read by more people than a secret should be.
        """
        if name in data:
            raise self.error(
                (*key_path, name), f"secrets are not written here: use {name}_env or {name}_file"
            )
        if f"{name}_env" in data:
            variable = str(data[f"{name}_env"])
            if variable not in env:
                raise self.error(
                    (*key_path, f"{name}_env"), f"environment variable {variable} is not set"
                )
            return env[variable]
        if f"{name}_file" in data:
            secret_path = self.path.parent / str(data[f"{name}_file"])
            try:
                return secret_path.read_text(encoding="utf-8").strip()
            except OSError as exc:
                raise self.error(
                    (*key_path, f"{name}_file"), f"cannot read: {exc.strerror}"
                ) from None
        return ""


def _fastagi(reader: _Reader, value: Any) -> FastAgiConfig:
    data = reader.mapping(("fastagi",), value)
    reader.no_unknown(("fastagi",), data, {"host", "port", "allowed_peers"})
    peers = data.get("allowed_peers")
    return FastAgiConfig(
        host=str(data.get("host", "127.0.0.1")),
        port=reader.integer(("fastagi", "port"), data.get("port", 4573), 0, 65535),
        allowed_peers=None
        if peers is None
        else frozenset(str(p) for p in reader.list_of(("fastagi", "allowed_peers"), peers)),
    )


def _ami_node(reader: _Reader, index: int, value: Any, env: Mapping[str, str]) -> AmiNodeConfig:
    where: tuple[str | int, ...] = ("ami", index)
    data = reader.mapping(where, value)
    reader.no_unknown(
        where,
        data,
        {
            "node",
            "host",
            "port",
            "username",
            "secret",
            "secret_env",
            "secret_file",
            "ping_interval",
            "send_filter",
        },
    )
    for required in ("node", "host", "username"):
        if required not in data:
            raise reader.error(where, f"missing key {required!r}")
    return AmiNodeConfig(
        node=str(data["node"]),
        host=str(data["host"]),
        port=reader.integer((*where, "port"), data.get("port", 5038), 1, 65535),
        username=str(data["username"]),
        secret=reader.secret(where, data, "secret", env),
        ping_interval=float(
            reader.integer((*where, "ping_interval"), data.get("ping_interval", 10), 1, 3600)
        ),
        send_filter=reader.boolean((*where, "send_filter"), data.get("send_filter", False)),
    )


def _http(reader: _Reader, value: Any, env: Mapping[str, str]) -> HttpConfig:
    data = reader.mapping(("http",), value)
    reader.no_unknown(
        ("http",), data, {"host", "port", "token", "token_env", "token_file", "transfer_timeout_s"}
    )
    return HttpConfig(
        host=str(data.get("host", "127.0.0.1")),
        port=reader.integer(("http", "port"), data.get("port", 8080), 0, 65535),
        token=reader.secret(("http",), data, "token", env),
        transfer_timeout_s=float(
            reader.integer(("http", "transfer_timeout_s"), data.get("transfer_timeout_s", 5), 1, 60)
        ),
    )


def _tickets(reader: _Reader, value: Any, base: Path, env: Mapping[str, str]) -> TicketsConfig:
    where: tuple[str | int, ...] = ("tickets",)
    data = reader.mapping(where, value)
    reader.no_unknown(
        where, data, {"backend", "path", "dsn", "dsn_env", "dsn_file", "delivery", "instance"}
    )
    backend = str(data.get("backend", "sqlite"))
    if backend not in ("sqlite", "postgres"):
        raise reader.error((*where, "backend"), f"unknown backend {backend!r} (sqlite or postgres)")
    dsn = reader.secret(where, data, "dsn", env)
    if backend == "postgres" and not dsn:
        raise reader.error((*where, "backend"), "the postgres backend needs dsn_env or dsn_file")
    delivery = data.get("delivery")
    return TicketsConfig(
        backend=backend,
        path=base / str(data.get("path", "var/tickets.sqlite3")),
        dsn=dsn,
        delivery=_delivery(reader, delivery, env) if delivery else None,
        instance=str(data["instance"]) if data.get("instance") else None,
    )


def _delivery(reader: _Reader, value: Any, env: Mapping[str, str]) -> DeliveryConfig:
    where: tuple[str | int, ...] = ("tickets", "delivery")
    data = reader.mapping(where, value)
    reader.no_unknown(where, data, {"receiver", "open311", "webhook", "max_attempts", "lease_s"})
    receiver = str(data.get("receiver", ""))
    if receiver not in ("open311", "webhook"):
        raise reader.error((*where, "receiver"), "must be open311 or webhook")
    if receiver not in data:
        raise reader.error(where, f"missing section {receiver!r} for the {receiver} receiver")
    open311 = webhook = None
    if receiver == "open311":
        section = (*where, "open311")
        o = reader.mapping(section, data["open311"])
        reader.no_unknown(
            section,
            o,
            {
                "base_url",
                "api_key",
                "api_key_env",
                "api_key_file",
                "service_codes",
                "jurisdiction_id",
                "default_address",
                "timeout_s",
            },
        )
        if "base_url" not in o:
            raise reader.error(section, "missing key 'base_url'")
        codes = dict(reader.mapping((*section, "service_codes"), o.get("service_codes") or {}))
        open311 = Open311Config(
            base_url=str(o["base_url"]),
            api_key=reader.secret(section, o, "api_key", env),
            service_codes=ServiceCodes(
                default=str(codes.pop("default", "12345")),
                by_key=MappingProxyType({str(k): str(v) for k, v in codes.items()}),
            ),
            jurisdiction_id=str(o.get("jurisdiction_id", "")),
            default_address=str(o.get("default_address", "")),
            timeout_s=float(
                reader.integer((*section, "timeout_s"), o.get("timeout_s", 10), 1, 300)
            ),
        )
    else:
        section = (*where, "webhook")
        w = reader.mapping(section, data["webhook"])
        reader.no_unknown(section, w, {"url", "token", "token_env", "token_file", "timeout_s"})
        if "url" not in w:
            raise reader.error(section, "missing key 'url'")
        webhook = WebhookConfig(
            url=str(w["url"]),
            token=reader.secret(section, w, "token", env),
            timeout_s=float(
                reader.integer((*section, "timeout_s"), w.get("timeout_s", 10), 1, 300)
            ),
        )
    return DeliveryConfig(
        receiver=receiver,
        open311=open311,
        webhook=webhook,
        max_attempts=reader.integer(
            (*where, "max_attempts"), data.get("max_attempts", 10), 1, 1000
        ),
        lease_s=float(reader.integer((*where, "lease_s"), data.get("lease_s", 120), 5, 86400)),
    )


def _callbacks(reader: _Reader, value: Any) -> CallbacksConfig:
    where: tuple[str | int, ...] = ("callbacks",)
    data = reader.mapping(where, value)
    reader.no_unknown(
        where,
        data,
        {
            "schedule",
            "channel",
            "context",
            "caller_id",
            "max_attempts",
            "retry_after_minutes",
            "rate_per_minute",
        },
    )
    if "schedule" not in data:
        raise reader.error(where, "missing key 'schedule' (a schedule id of the dialplan)")
    defaults = CallbackPolicy()
    return CallbacksConfig(
        schedule=str(data["schedule"]),
        policy=CallbackPolicy(
            channel=str(data.get("channel", defaults.channel)),
            context=str(data.get("context", defaults.context)),
            caller_id=str(data.get("caller_id", defaults.caller_id)),
            max_attempts=reader.integer(
                (*where, "max_attempts"), data.get("max_attempts", 3), 1, 20
            ),
            retry_after=timedelta(
                minutes=reader.integer(
                    (*where, "retry_after_minutes"), data.get("retry_after_minutes", 30), 1, 10080
                )
            ),
            rate_per_minute=float(
                reader.integer((*where, "rate_per_minute"), data.get("rate_per_minute", 10), 1, 600)
            ),
        ),
    )
