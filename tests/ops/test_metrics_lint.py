"""A live /metrics after simulated calls: promtool finds nothing, and the numbers are right."""

from __future__ import annotations

from ivr.simpbx import CallScript

from .conftest import DEPLOY, RULES, Hotline, Promtool

# Calls of every kind that touch most metrics: a consult, an emergency that fails over, a
# silent caller, a caller who hangs up mid-menu.
_CALLS = (
    CallScript(caller_number="13900001111", keys=("1",)),
    CallScript(caller_number="13800008888", keys=("9", "2"),
               dial_outcomes={"Local/119@emergency-routes": "BUSY"}),
    CallScript(caller_number="13300004444"),
    CallScript(caller_number="13200007777", keys=("2", "hangup")),
)


async def _metrics_after_calls(hotline: Hotline) -> str:
    for script in _CALLS:
        await hotline.call(script)
    status, body = await hotline.http_get("/metrics", token=None)
    assert status == 200
    return body


async def test_live_metrics_pass_promtool_check_metrics(
    hotline: Hotline, promtool: Promtool
) -> None:
    """promtool check metrics reports no problem in /metrics after calls of every kind."""
    body = await _metrics_after_calls(hotline)
    result = promtool.run("check", "metrics", stdin=body)
    assert (result.returncode, result.stdout + result.stderr) == (0, "")


def test_promtool_check_metrics_can_fail(promtool: Promtool) -> None:
    """The check above is not vacuous: promtool flags a counter named without _total."""
    bad = "# HELP hotline_calls Calls.\n# TYPE hotline_calls counter\nhotline_calls 1\n"
    result = promtool.run("check", "metrics", stdin=bad)
    assert result.returncode != 0 and "_total" in result.stdout + result.stderr


async def test_metrics_count_the_calls(hotline: Hotline) -> None:
    """After the calls, /metrics holds the right counts by line, outcome, menu and service."""
    body = await _metrics_after_calls(hotline)
    expected = (
        'hotline_calls_total{line="12345",outcome="agent"} 2.0',
        'hotline_calls_total{line="12345",outcome="emergency_handoff"} 1.0',
        'hotline_calls_total{line="12345",outcome="abandoned_in_ivr"} 1.0',
        'hotline_ivr_selections_total{key="1",menu="root"} 1.0',
        'hotline_ivr_timeouts_total{menu="root"} 3.0',
        'hotline_emergency_handoffs_total{result="failed_over",service="fire"} 1.0',
        'hotline_emergency_handoff_seconds_count 1.0',
        'hotline_agi_session_seconds_count 4.0',
        'hotline_tickets_total{backend="sqlite",result="created"} 4.0',
        'hotline_ami_connected{node="sim"} 1.0',
        'hotline_active_calls{line="12345"} 0.0',
        # Series an alert watches exist at 0 before the first event.
        'hotline_call_errors_total{kind="internal"} 0.0',
        'hotline_dialplan_reloads_total{result="failure"} 0.0',
        "hotline_fastagi_rejected_connections_total 0.0",
    )
    missing = [line for line in expected if line not in body.splitlines()]
    assert not missing, missing
    assert hotline.metric("hotline_ami_events_total", node="sim") > 0
    assert any(line.startswith("hotline_build_info{version=") for line in body.splitlines())



async def test_wired_metrics_after_calls(hotline: Hotline) -> None:
    """Queue results, dial attempts, readiness and pre-declared series appear after calls."""
    body = await _metrics_after_calls(hotline)
    expected = (
        'hotline_queue_calls_total{queue="hotline-agents",result="answered"} 2.0',
        'hotline_queue_waiting{queue="hotline-agents"} 0.0',
        'hotline_emergency_dial_attempts_total{service="fire",status="BUSY"} 1.0',
        'hotline_emergency_dial_attempts_total{service="fire",status="ANSWER"} 1.0',
        'hotline_emergency_handoffs_total{result="all_failed",service="police"} 0.0',
        'hotline_ready{check="ami"} 1.0',
        'hotline_ready{check="fastagi"} 1.0',
        'hotline_ready{check="tickets"} 1.0',
        "hotline_dialplan_last_reload_successful 1.0",
        'hotline_ami_tracked_calls{node="sim"} 0.0',
        'hotline_ami_handler_errors_total{node="sim"} 0.0',
        "hotline_ticket_write_queue 0.0",
    )
    missing = [line for line in expected if line not in body.splitlines()]
    assert not missing, missing


def test_shipped_rules_pass_promtool_check_rules(promtool: Promtool) -> None:
    """The shipped alert and recording rules are valid for promtool check rules."""
    result = promtool.run("check", "rules", str(RULES))
    assert result.returncode == 0, result.stdout + result.stderr


def test_shipped_rules_fire_as_documented(promtool: Promtool) -> None:
    """promtool test rules: each alert fires on the series that should raise it, and only then."""
    result = promtool.run(
        "test", "rules", str(DEPLOY.parent / "tests" / "ops" / "hotline-rules.test.yml")
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_example_scrape_config_is_valid(promtool: Promtool) -> None:
    """The example prometheus.yml passes promtool check config, rule file included."""
    result = promtool.run("check", "config", str(DEPLOY / "prometheus" / "prometheus.yml"))
    assert result.returncode == 0, result.stdout + result.stderr
