"""The config file contract: typed values, env substitution, and one-line errors naming file, line and key."""

from __future__ import annotations

from pathlib import Path

import pytest

from surgewatch.config import ConfigError, load_config, parse_config
from surgewatch.defaults import default_config
from surgewatch.model import Severity

ROOT = Path(__file__).resolve().parents[2]


def error_of(text: str, env: dict[str, str] | None = None) -> str:
    with pytest.raises(ConfigError) as info:
        parse_config(text, "config.toml", env or {})
    message = str(info.value)
    assert "\n" not in message
    return message


def test_rule_for_that_is_not_a_duration_names_file_line_rule_and_key() -> None:
    text = '[[rule]]\nname = "cpu-high"\nseries = "host:*/cpu.percent"\nabove = 90\nfor = 30\n'
    assert error_of(text) == 'config.toml:5: rule "cpu-high": for must be a duration like "30s", got 30'


def test_unknown_key_is_an_error_not_silently_ignored() -> None:
    text = '[[host]]\nname = "web-1"\nsource = "local"\nintervall = "5s"\n'
    assert error_of(text) == "config.toml:4: host \"web-1\": unknown key 'intervall'"


def test_unknown_section_is_an_error() -> None:
    assert "unknown section [monitr]" in error_of("[monitr]\ninterval = \"2s\"\n")


def test_invalid_toml_reports_the_line() -> None:
    message = error_of('[monitor]\ninterval = "2s\n')
    assert message.startswith("config.toml: invalid TOML:") and "line 2" in message


def test_environment_variables_are_substituted() -> None:
    text = '[[host]]\nname = "${HOST_NAME}"\nsource = "local"\n'
    cfg = parse_config(text, "c.toml", {"HOST_NAME": "web-9"})
    assert cfg.hosts[0].name == "web-9"


def test_missing_environment_variable_is_named() -> None:
    text = '[[sink]]\nkind = "webhook"\nurl = "${HOOK_URL}"\n'
    message = error_of(text)
    assert "HOOK_URL" in message and "not set" in message and message.startswith("config.toml:3:")


def test_durations_and_severity_are_typed() -> None:
    text = ('[monitor]\ninterval = "250ms"\nhistory = "2h"\n'
            '[[rule]]\nname = "r"\nseries = "host:*/load.1"\nbelow = 0.5\nclear = 1\nfor = "2m"\n'
            'severity = "critical"\n')
    cfg = parse_config(text, "c.toml", {})
    assert cfg.monitor.interval == 0.25 and cfg.monitor.history == 7200
    rule = cfg.rules[0]
    assert (rule.below, rule.clear, rule.for_, rule.severity, rule.kind) == (0.5, 1.0, 120.0, Severity.CRITICAL,
                                                                              "threshold")


@pytest.mark.parametrize(("body", "expected"), [
    ('name = "r"\nseries = "host:*/cpu.percent"\n',
     "needs one of above, below, anomaly, forecast_above or preflight_above"),
    ('name = "r"\nseries = "host:*/cpu.percent"\nabove = 90\nclear = 95\n', "clear (95) must not be above"),
    ('name = "r"\nseries = "cpu"\nabove = 90\n', "series must be a glob of KIND:NAME/METRIC"),
    ('name = "r"\nseries = "host:*/cpu.percent"\nabove = 90\nseverity = "page"\n', "severity must be info"),
    ('name = "r"\nseries = "host:*/cpu.percent"\nanomaly = "weird"\n', "anomaly must be one of any, unexplained"),
    ('name = "r"\nseries = "host:*/cpu.percent"\nanomaly = "any"\nthreshold = 3\n', "threshold must be an anomaly"),
])
def test_bad_rules_are_explained(body: str, expected: str) -> None:
    assert expected in error_of("[[rule]]\n" + body)


def test_campaign_must_name_a_configured_traffic_source() -> None:
    text = '[[campaign]]\nname = "spring"\ntraffic = "site"\n'
    assert error_of(text) == "config.toml:3: campaign \"spring\": traffic 'site' is not a [[traffic]] name"


def test_duplicate_names_are_rejected() -> None:
    text = '[[host]]\nname = "a"\nsource = "local"\n[[host]]\nname = "a"\nsource = "demo"\n'
    assert "name is used twice" in error_of(text)


def test_missing_file_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such file"):
        load_config(tmp_path / "nope.toml")


def test_built_in_default_has_local_host_and_labelled_demo() -> None:
    cfg = default_config()
    assert [(h.name, h.source) for h in cfg.hosts] == [("local", "local"), ("demo-web", "demo")]
    assert cfg.campaigns[0].name.startswith("demo") and cfg.campaigns[0].hosts == ("demo-web",)


def test_demo_speed_shrinks_the_default_tick_and_for_durations() -> None:
    slow, fast = default_config(1.0), default_config(30.0)
    assert fast.monitor.interval < slow.monitor.interval
    assert fast.rules[0].for_ == pytest.approx(1.0) and slow.rules[0].for_ == 30.0


def test_example_config_is_valid_and_documents_every_key() -> None:
    env = {k: "x" for k in ("WEB1_TOKEN", "PLAUSIBLE_TOKEN", "SLACK_WEBHOOK_URL", "MATOMO_TOKEN", "GA4_TOKEN",
                            "UMAMI_PASSWORD", "UMAMI_API_KEY")}
    env["SLACK_WEBHOOK_URL"] = "https://hooks.example.com/x"
    cfg = load_config(ROOT / "config.example.toml", environ=env)
    assert cfg.hosts and cfg.traffic and cfg.campaigns and cfg.rules and cfg.sinks


def test_monitor_detector_picks_the_live_detector_and_rejects_unknown_names() -> None:
    from surgewatch.evaluate import DEFAULT_DETECTOR

    assert parse_config("[monitor]\n", "c.toml", {}).monitor.detector == DEFAULT_DETECTOR == "surge-context"
    assert parse_config('[monitor]\ndetector = "surge-level"\n', "c.toml", {}).monitor.detector == "surge-level"
    msg = error_of('[monitor]\ndetector = "null"\n')
    assert "detector must be one of" in msg and "'null'" in msg and "\n" not in msg


def test_the_engine_runs_the_configured_detector_and_records_its_name() -> None:
    from surgewatch.engine import Engine, EngineOptions

    cfg = parse_config('[monitor]\ndetector = "surge-level"\n', "c.toml", {})
    engine = Engine(cfg, EngineOptions(dispatcher=None), sources=[])
    assert engine.detector_name == "surge-level" and engine.detector.name == "surge-level"
    assert Engine(cfg, EngineOptions(detector="robust-z"), sources=[]).detector.name == "robust-z"


def test_practical_significance_floors_are_read_from_monitor_and_rules() -> None:
    cfg = parse_config('[monitor]\nfloor_points = 8\nfloor_load = 1\nfloor_relative = 0.25\n'
                       '[[rule]]\nname = "u"\nseries = "host:*/cpu.percent"\nanomaly = "unexplained"\nfloor = 2\n',
                       "c.toml", {})
    assert (cfg.monitor.floor_points, cfg.monitor.floor_load, cfg.monitor.floor_relative) == (8.0, 1.0, 0.25)
    assert cfg.rules[0].floor == 2.0
    default = parse_config("[monitor]\n", "c.toml", {}).monitor
    assert (default.floor_points, default.floor_load, default.floor_relative) == (5.0, 0.5, 0.5)


@pytest.mark.parametrize(("text", "expected"), [
    ('[monitor]\nfloor_points = -1\n', "floor_points"),
    ('[monitor]\nfloor_relative = "big"\n', "floor_relative"),
    ('[[rule]]\nname = "t"\nseries = "host:*/cpu.percent"\nabove = 90\nfloor = 5\n', "floor only applies to anomaly"),
])
def test_bad_floors_are_one_line_errors(text: str, expected: str) -> None:
    assert expected in error_of(text)
