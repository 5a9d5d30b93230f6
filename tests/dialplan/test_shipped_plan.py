"""The dialplan shipped in ``dialplans/``: loads cleanly and says what the hotline needs."""

from __future__ import annotations

from pathlib import Path

from ivr.dialplan import Dialplan, DialTarget, load_dialplan

SHIPPED = Path(__file__).parents[2] / "dialplans"


def test_loads_without_errors_or_warnings(shipped: Dialplan) -> None:
    """The shipped dialplan is valid and has nothing unused or untranslated."""
    assert shipped.warnings == ()
    assert shipped.main.number == "12345" and shipped.main.schedule is None
    assert {"96119", "12312", "12320", "961890"} <= set(shipped.lines)


def test_version_is_a_short_hash_of_the_source(shipped: Dialplan, tmp_path: Path) -> None:
    """The version is stable for the same bytes and changes with them."""
    assert len(shipped.version) == 12
    assert load_dialplan([SHIPPED]).version == shipped.version
    copy = tmp_path / "hotline.yaml"
    copy.write_bytes((SHIPPED / "hotline.yaml").read_bytes() + b"# edited\n")
    assert load_dialplan([copy]).version != shipped.version


def test_emergency_services_fail_over_to_a_second_route(shipped: Dialplan) -> None:
    """Each of 110/119/120/122 has its primary route and a second trunk, 20 s each."""
    numbers = {service.id: service.number for service in shipped.emergency.values()}
    assert numbers == {"police": "110", "fire": "119", "ambulance": "120", "traffic": "122"}
    assert shipped.emergency["fire"].targets == (
        DialTarget("Local/119@emergency-routes", 20),
        DialTarget("PJSIP/119@emergency-trunk-b", 20),
    )


def test_queues_and_settings(shipped: Dialplan) -> None:
    """The default and supervisor queues map to the Asterisk queues the PBX defines."""
    assert shipped.queues[shipped.default_queue].asterisk_queue == "hotline-agents"
    assert shipped.queues[shipped.supervisor_queue].asterisk_queue == "hotline-supervisor"
    assert shipped.languages == ("zh", "en")


def test_sound_file_names(shipped: Dialplan) -> None:
    """Prompts map to ``hotline/<language>/<id>``."""
    assert shipped.sound("welcome-12345", "zh") == "hotline/zh/welcome-12345"
    assert shipped.sound("welcome-12345", "en") == "hotline/en/welcome-12345"
    assert "12345" in shipped.prompts["welcome-12345"].texts["zh"]


def test_national_day_2026_calendar(shipped: Dialplan) -> None:
    """National Day 2026 is 1-7 October with make-up days on 20 September and 10 October."""
    office = shipped.schedules["office-hours"]
    october = {day.isoformat() for day in office.holidays if day.month == 10}
    assert october == {f"2026-10-0{n}" for n in range(1, 8)}
    assert {day.isoformat() for day in office.makeup_days} >= {"2026-09-20", "2026-10-10"}
