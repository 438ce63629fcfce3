"""Sources and sinks are plug-ins: a kind is an options dataclass plus a build function, listed in a registry.

A test kind registered here is read, checked and built from its config table like the shipped ones; keys only
other kinds take are refused naming those kinds. Runtime: about 1 s.
"""

from __future__ import annotations

import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from surgewatch import plugins as opt
from surgewatch.config import ConfigError, parse_config
from surgewatch.model import series
from surgewatch.plugins import Kind, OptionError, keys_of
from surgewatch.recording.reader import Recording
from surgewatch.recording.replay import replay_config
from surgewatch.registry import FEEDS, HOSTS, SINKS, TRAFFIC
from surgewatch.sources import Reading, build_sources
from surgewatch.sources.base import SourceContext, TrafficConfig
from surgewatch.sources.web_kinds import PlausibleConfig, UmamiConfig
from tests.support.recordings import CONFIG as RECORDED_CONFIG
from tests.support.recordings import craft

ROOT = Path(__file__).resolve().parents[2]


# -- a whole new kind, as its own module would declare it -----------------------------------------------


@dataclass(frozen=True, kw_only=True)
class ConstantConfig(TrafficConfig):
    """[[traffic]] source = "constant": the same visitor count every poll."""

    source: str = "constant"
    visitors: int = opt.option(lambda r, k: r.count(k, 1), required=True)
    share: int | None = opt.integer()  # visitors of each campaign it feeds

    def validate(self) -> None:
        if self.share is not None and self.share > self.visitors:
            raise OptionError("share", "share must not be above visitors")


class ConstantSource:
    demo = False

    def __init__(self, cfg: ConstantConfig, ctx: SourceContext) -> None:
        self.name, self.interval, self.timeout = f"traffic:{cfg.name}", ctx.interval, ctx.timeout
        self.cfg, self.campaigns = cfg, [name for name, _ in ctx.campaigns]

    async def poll(self) -> Reading:
        values = {series("traffic", self.cfg.name, "visitors"): float(self.cfg.visitors)}
        values |= {series("campaign", c, "visitors"): float(self.cfg.share or 0) for c in self.campaigns}
        return Reading(values)

    async def close(self) -> None:
        return None


def build_constant(cfg: ConstantConfig, ctx: SourceContext) -> ConstantSource:
    return ConstantSource(cfg, ctx)


KINDS = [Kind("constant", ConstantConfig, build_constant)]  # what the registry finds in a kind's module


@pytest.fixture
def constant_kind(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(TRAFFIC.modules, "constant", __name__)  # the one line a new kind adds to the registry


def error_of(text: str) -> str:
    with pytest.raises(ConfigError) as info:
        parse_config(text, "config.toml", {})
    assert "\n" not in str(info.value)
    return str(info.value)


CONSTANT_SITE = '[[traffic]]\nname = "c"\nsource = "constant"\nvisitors = 42\n'


async def test_a_registered_kind_is_read_from_its_table_and_built_with_its_campaigns(constant_kind: None) -> None:
    cfg = parse_config(CONSTANT_SITE + 'share = 5\ninterval = "7s"\n[[campaign]]\nname = "sale"\ntraffic = "c"\n',
                       "config.toml", {})
    assert cfg.traffic == (ConstantConfig(name="c", interval=7.0, visitors=42, share=5),)
    (source,) = build_sources(cfg)
    assert isinstance(source, ConstantSource) and (source.interval, source.campaigns) == (7.0, ["sale"])
    reading = await source.poll()
    assert reading.values == {"traffic:c/visitors": 42.0, "campaign:sale/visitors": 5.0}


@pytest.mark.parametrize(("extra", "message"), [
    ('visitors = "many"', "config.toml:4: traffic \"c\": visitors must be a whole number, got 'many'"),
    ("visitors = 0", 'config.toml:4: traffic "c": visitors must be at least 1, got 0'),
    ("visitors = 3\nshare = 4", 'config.toml:5: traffic "c": share must not be above visitors'),
    ("visitors = 3\nshares = 4", "config.toml:5: traffic \"c\": unknown key 'shares'"),
    ('visitors = 3\nsite_id = "x"',
     "config.toml:5: traffic \"c\": site_id only applies to sources 'plausible', 'umami', 'matomo', 'ga4'"),
])
def test_a_registered_kinds_keys_get_the_same_one_line_errors_as_every_other(constant_kind: None, extra: str,
                                                                            message: str) -> None:
    assert error_of('[[traffic]]\nname = "c"\nsource = "constant"\n' + extra + "\n") == message


def test_a_required_key_of_a_registered_kind_and_its_keys_on_other_kinds(constant_kind: None) -> None:
    assert error_of('[[traffic]]\nname = "c"\nsource = "constant"\n') == \
        "config.toml:1: traffic \"c\": source 'constant' needs visitors"
    plausible = '[[traffic]]\nname = "p"\nsource = "plausible"\nsite_id = "s"\nvisitors = 3\n'
    assert error_of(plausible).endswith("visitors only applies to source 'constant'")
    assert "constant" in error_of('[[traffic]]\nname = "x"\nsource = "constan"\n')  # listed among the kinds


@pytest.mark.parametrize(("text", "message"), [
    ('[[host]]\nname = "a"\nsource = "local"\nurl = "http://127.0.0.1:9100/metrics"\n',
     "config.toml:4: host \"a\": url only applies to sources 'prometheus', 'promql'"),
    ('[[host]]\nname = "a"\nsource = "prometheus"\nurl = "http://127.0.0.1:9100/"\ngroup_label = "job"\n',
     "config.toml:5: host \"a\": group_label only applies to source 'promql'"),
    ('[[traffic]]\nname = "p"\nsource = "plausible"\nsite_id = "s"\nusername = "u"\n',
     "config.toml:5: traffic \"p\": username only applies to source 'umami'"),
    ('[[traffic]]\nname = "u"\nsource = "umami"\nsite_id = "s"\ntoken = "t"\ngoals = ["Buy"]\n',
     "config.toml:6: traffic \"u\": goals only applies to sources 'plausible', 'matomo'"),
    ('[[sink]]\nkind = "stdout"\ntimeout = "2s"\n',
     'config.toml:3: sink "stdout": timeout applies only to webhook, slack, alertmanager and command sinks'),
    ('[[traffic]]\nname = "t"\nsource = "demo"\n[[campaign_feed]]\nname = "f"\nsource = "ical"\npath = "a.ics"\n'
     'items = "data"\n', "config.toml:8: campaign_feed \"f\": items only applies to source 'json'"),
])
def test_a_key_only_other_kinds_take_is_refused_naming_them(text: str, message: str) -> None:
    assert error_of(text) == message


def test_each_kind_gets_its_own_typed_options_so_umami_login_is_umamis_alone() -> None:
    cfg = parse_config('[[traffic]]\nname = "u"\nsource = "umami"\nsite_id = "w"\nurl = "http://127.0.0.1:3000"\n'
                       'username = "admin"\npassword = "pw"\n'
                       '[[traffic]]\nname = "p"\nsource = "plausible"\nsite_id = "shop"\n', "config.toml", {})
    umami, plausible = cfg.traffic
    assert isinstance(umami, UmamiConfig) and (umami.username, umami.password) == ("admin", "pw")
    assert "pw" not in repr(umami)  # secrets stay out of the options' repr (logs, tracebacks)
    assert isinstance(plausible, PlausibleConfig) and not hasattr(plausible, "username")


def test_every_key_every_kind_takes_is_documented_in_the_example_config() -> None:
    text = (ROOT / "config.example.toml").read_text()
    documented = set(re.findall(r"^\s*#?\s*([a-z_]+)\s*=", text, re.M))
    documented |= set(re.findall(r"^[#\s]*\[(?:host|traffic|sink|campaign_feed)\.([a-z_]+)\]", text, re.M))
    undocumented = {f"{section.name} {kind.name}: {key}" for section in (HOSTS, TRAFFIC, SINKS, FEEDS)
                    for kind in section.kinds for key in keys_of(kind.options) if key not in documented}
    assert undocumented == set()


def test_reading_a_config_of_every_kind_imports_no_source_or_sink_code() -> None:
    code = ("import sys\nfrom surgewatch.config import load_config\n"
            "env = {k: 'https://127.0.0.1/x' for k in ('GA4_TOKEN', 'MATOMO_TOKEN', 'PLAUSIBLE_TOKEN', "
            "'SLACK_WEBHOOK_URL', 'SURGEWATCH_EXPORT_TOKEN', 'UMAMI_PASSWORD', 'WEB1_TOKEN')}\n"
            f"cfg = load_config({str(ROOT / 'config.example.toml')!r}, env)\n"
            "assert len({t.source for t in cfg.traffic}) == 8 and len({s.kind for s in cfg.sinks}) == 7\n"
            "assert [f.source for f in cfg.campaign_feeds] == ['ical']\n"
            "heavy = ('httpx', 'psutil', 'surgewatch.sources.http', 'surgewatch.sources.umami', "
            "'surgewatch.sources.local', 'surgewatch.alerting.sinks', 'icalendar', 'surgewatch.feeds')\n"
            "print([m for m in heavy if m in sys.modules])\n")
    assert printed_by(code) == "[]"


def test_a_recording_whose_config_has_keys_its_kinds_never_took_still_replays_with_it(tmp_path: Path) -> None:
    # Before kinds had their own options such keys were accepted and ignored; recordings keep that config.
    old = RECORDED_CONFIG.replace('url = "http://127.0.0.1:9/stats"', 'url = "http://127.0.0.1:9/stats"\nwindow = "5m"')
    old = old.replace('source = "prometheus"', 'source = "prometheus"\nseed = 3')
    path = craft(tmp_path / "old.swrec", [[1.0, 2.0, 3.0, 4.0]], config=old)
    assert error_of(old).endswith("seed only applies to source 'demo'")
    rec = Recording(str(path))
    try:
        cfg = replay_config(rec)
    finally:
        rec.close()
    assert [(h.name, h.source) for h in cfg.hosts] == [("web-1", "prometheus")] and not hasattr(cfg.hosts[0], "seed")
    assert cfg.traffic[0].source == "json" and not hasattr(cfg.traffic[0], "window")
    with pytest.raises(ConfigError, match="unknown key 'windoww'"):  # a typo is still refused
        parse_config(old.replace("window =", "windoww ="), "rec", {}, recorded=True)


def test_reading_a_config_imports_only_the_kinds_it_uses() -> None:
    code = ("import sys\nfrom surgewatch.config import parse_config\n"
            "cfg = parse_config('[[host]]\\nname = \"h\"\\nsource = \"local\"\\n[[traffic]]\\nname = \"t\"\\n"
            "source = \"demo\"\\n')\n"
            "print(sorted(m for m in sys.modules if m.endswith('_kinds')))\n")
    assert printed_by(code) == "['surgewatch.sources.host_kinds', 'surgewatch.sources.traffic_kinds']"


def printed_by(code: str) -> str:
    """What `code` prints in a fresh interpreter (which modules it imported)."""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()
