"""``dialplans/schema.json`` matches the loader: same keys, and shipped files validate."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from ivr.dialplan import loader
from ivr.dialplan._sections import _MODIFIERS, _TARGET_KIND, WEEKDAYS

SHIPPED = Path(__file__).parents[2] / "dialplans"
SCHEMA: dict[str, Any] = json.loads((SHIPPED / "schema.json").read_text(encoding="utf-8"))


def _props(node: dict[str, Any]) -> set[str]:
    return set(node["properties"])


def _entry(section: str) -> dict[str, Any]:
    entry: dict[str, Any] = SCHEMA["properties"][section]["additionalProperties"]
    return entry


def test_schema_keys_are_the_loaders() -> None:
    """Every section and object lists exactly the keys the loader accepts."""
    top = SCHEMA["properties"]
    assert set(top) == set(loader.SECTIONS)
    assert SCHEMA["additionalProperties"] is False
    settings = top["settings"]
    assert _props(settings) == {*loader._SETTINGS_REQUIRED, *loader._SETTINGS_OPTIONAL}
    assert set(settings["required"]) == set(loader._SETTINGS_REQUIRED)
    assert _props(_entry("menus")) == {"prompt", "keys", *loader._MENU_OPTIONAL}
    assert _props(_entry("lines")) == {"label", "kind", "menu", *loader._LINE_OPTIONAL}
    assert _props(_entry("queues")) == {"asterisk_queue", "label"}
    assert _props(_entry("departments")) == {"label", "dial", "targets", "queue"}
    assert _props(_entry("schedules")) == {"timezone", "weekly", "holidays", "makeup_days",
                                           "makeup_hours"}
    assert _props(_entry("schedules")["properties"]["weekly"]) == set(WEEKDAYS)
    assert set(top["emergency"]["properties"]) == {"police", "fire", "ambulance", "traffic"}


def test_schema_actions_are_the_loaders() -> None:
    """Each action verb takes exactly the modifiers the loader allows it."""
    objects = SCHEMA["$defs"]["action"]["oneOf"][1:]
    by_verb = {entry["required"][0]: _props(entry) - {entry["required"][0]} for entry in objects}
    assert by_verb == {kind.value: set(_MODIFIERS[kind]) for kind in _TARGET_KIND}
    assert all(entry["additionalProperties"] is False for entry in objects)
    assert SCHEMA["$defs"]["action"]["oneOf"][0]["enum"] == ["back", "repeat", "hangup"]


def test_shipped_files_name_the_schema() -> None:
    """The editor modeline points at schema.json in the shipped dialplan."""
    first = (SHIPPED / "hotline.yaml").read_text(encoding="utf-8").splitlines()[0]
    assert first == "# yaml-language-server: $schema=schema.json"


class _Yaml12Loader(yaml.SafeLoader):
    """Reads dates as text, as the YAML language server (YAML 1.2) does."""


_Yaml12Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def _validator() -> Any:
    jsonschema = pytest.importorskip("jsonschema")
    jsonschema.Draft202012Validator.check_schema(SCHEMA)
    return jsonschema.Draft202012Validator(SCHEMA)


@pytest.mark.parametrize("path", sorted(SHIPPED.glob("*.yaml")), ids=lambda p: p.name)
def test_shipped_yaml_validates_against_the_schema(path: Path) -> None:
    """Each shipped dialplan file is valid for the schema."""
    document = yaml.load(path.read_text(encoding="utf-8"), Loader=_Yaml12Loader)
    assert [error.message for error in _validator().iter_errors(document)] == []


@pytest.mark.parametrize("change", [
    ("  main_line:", "  main_lines:"),
    ("    prompt: welcome-12345", "    prompts: welcome-12345"),
    ('"1": {queue: general, kind: consult}', '"1": {queue: general, kind: chat}'),
    ('"1": {queue: general, kind: consult}', '"1": {queue: general, then: back}'),
    ('"2": {menu: complaint}', '"12": {menu: complaint}'),
    ("    retries: 1 ", "    retries: one "),
    ("    kind: report\n    menu: fire-96119", "    kind: report\n    menus: fire-96119"),
    ("{dial: Local/110@emergency-routes, timeout: 20}", "{dial: Local/110@emergency-routes, "
     "timeout: 20, weight: 1}"),
    ("      sat: closed", '      sat: "9-12"'),
])
def test_schema_rejects_what_the_loader_rejects(change: tuple[str, str]) -> None:
    """Unknown keys, wrong types and bad values fail the schema as they fail the loader."""
    text = (SHIPPED / "hotline.yaml").read_text(encoding="utf-8")
    assert change[0] in text
    document = yaml.load(text.replace(change[0], change[1], 1), Loader=_Yaml12Loader)
    assert list(_validator().iter_errors(document)) != []
