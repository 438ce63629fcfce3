"""The post-mortem page escapes every text that comes from a recording (names, rules, summaries, config label)."""

from __future__ import annotations

import math
from html.parser import HTMLParser

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from markupsafe import escape

from surgewatch.model import Annotation
from surgewatch.recording.postmortem import PairFit, ReportData, render

TAGS = {"html", "head", "meta", "title", "style", "body", "h1", "h2", "p", "figure", "figcaption", "span", "i",
        "svg", "line", "text", "rect", "circle", "polyline", "table", "tr", "th", "td", "code"}


class _Tags(HTMLParser):
    """Collects the tag names and attribute names a page really has."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: set[str] = set()
        self.attrs: set[str] = set()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.add(tag)
        self.attrs.update(a for a, _v in attrs)


def _data(text: str) -> ReportData:
    """A report whose every recorded text field is `text` (campaign, host, rule, series, summary, ...).

    Names hold no "/", which would split a series name into another host.
    """
    t0 = 1_700_000_000.0
    ts = np.arange(t0, t0 + 600, 10.0)
    series = {f"campaign:{text}/visitors": np.linspace(10, 500, ts.size),
              f"host:{text}/cpu.percent": np.linspace(5, 95, ts.size)}
    alert: dict[str, object] = {"_ts": t0 + 100, "event": "firing", "severity": text, "rule": text,
                                "series": f"host:{text}/cpu.percent", "value": 93.0, "cause": text,
                                "explanation": text, "summary": text, "fingerprint": text}
    fit = PairFit(text, text, "cpu.percent", lag=30.0, slope=0.2, r2=0.9, headroom=1.5, min_headroom=1.1,
                  min_headroom_at=t0 + 300, headroom_ts=[t0, t0 + 300], headroom_series=[2.0, 1.1])
    return ReportData(text, t0, t0 + 600, 10.0, text, ts, series, [alert, alert | {"event": "resolved"}],
                      [{"_ts": t0 + 50, "campaign": text, "event": "surge-start"}], [(text, t0, t0 + 400)],
                      [fit], 1, [Annotation(1, t0 + 60, text, text, 900.0, "recording")])


def _structure(page: str) -> tuple[set[str], set[str]]:
    parser = _Tags()
    parser.feed(page)
    return parser.tags, parser.attrs


def _assert_escaped(text: str, page: str) -> None:
    tags, attrs = _structure(page)
    assert (tags, attrs) == _structure(render(_data("web-1")))  # a recorded name adds no tag nor attribute
    assert tags <= TAGS, tags - TAGS
    assert attrs <= {"lang", "charset", "name", "content", "class", "x1", "y1", "x2", "y2", "x", "y",
                            "text-anchor", "viewbox", "width", "height", "role", "aria-label", "style", "stroke",
                            "stroke-width", "stroke-dasharray", "cx", "cy", "r", "fill", "opacity", "rx", "points"}
    assert str(escape(text)) in page


def test_report_escapes_markup_in_recorded_names() -> None:
    evil = "<script>alert(1)<\\script>\"' onload='x' &amp;"
    page = render(_data(evil))
    assert "<script" not in page and "onload='x'" not in page and evil not in page
    _assert_escaped(evil, page)
    assert page.count("&lt;script&gt;") >= 10  # the title, tables, legend, tooltips: each escaped


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(alphabet=st.sampled_from("<>&\"'=ab \u00e9\u2028x-;#"), min_size=1, max_size=24))
def test_no_generated_recording_string_appears_unescaped(text: str) -> None:
    _assert_escaped(text, render(_data(text)))


def test_report_draws_what_a_damaged_recording_holds() -> None:
    data = _data("web-1")
    data.series["host:web-1/cpu.percent"][3:6] = [math.inf, math.nan, 1.75e308]
    data.series["campaign:web-1/visitors"][:] = -1.75e308
    data.alerts.append({"_ts": math.inf, "event": "firing", "value": "1.75e308x", "rule": "r"})
    data.alerts.append({"_ts": "nonsense", "event": "firing", "value": math.nan})
    page = render(data)
    assert page.count("<svg") >= 3 and "1.75e308x" in page
