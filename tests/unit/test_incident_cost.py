"""The post-mortem's "what the incident cost the campaign": conversion rate inside an unexplained alert vs the
rest of the campaign, and the visitors it touched."""

from __future__ import annotations

import numpy as np
import pytest

from surgewatch.recording.postmortem import incident_costs


def test_an_unexplained_alert_during_a_campaign_is_priced_in_conversions() -> None:
    ts = np.arange(0.0, 3600.0, 10.0)
    visitors = np.full(ts.shape, 200.0)
    conversions = np.full(ts.shape, 10.0)  # 5 % outside
    bad = (ts >= 1200) & (ts <= 1800)
    conversions[bad] = 2.0  # 1 % while the checkout was failing
    series = {"campaign:sale/visitors": visitors, "campaign:sale/conversions": conversions}
    alerts = [
        {"_ts": 1200.0, "event": "firing", "cause": "unexplained", "fingerprint": "a", "series": "host:db/cpu"},
        {"_ts": 1800.0, "event": "resolved", "cause": "unexplained", "fingerprint": "a", "series": "host:db/cpu"},
        {"_ts": 600.0, "event": "firing", "cause": "campaign", "fingerprint": "b", "series": "host:web/cpu"},
    ]
    (cost,) = incident_costs(ts, series, alerts, [("sale", 0.0, 3590.0), ("other", 0.0, None)], 3590.0)
    assert (cost.campaign, cost.series, cost.start, cost.end) == ("sale", "host:db/cpu", 1200.0, 1800.0)
    assert cost.rate_inside == pytest.approx(0.01) and cost.rate_outside == pytest.approx(0.05)
    assert cost.visitors_touched == pytest.approx(200.0 * (600 + 300) / 300)
    assert cost.lost == pytest.approx(0.04 * 600.0)


def test_a_campaign_without_conversions_or_an_alert_outside_it_costs_nothing() -> None:
    ts = np.arange(0.0, 100.0, 10.0)
    alerts = [{"_ts": 50.0, "event": "firing", "cause": "unexplained", "fingerprint": "a", "series": "host:x/cpu"}]
    assert incident_costs(ts, {"campaign:c/visitors": np.ones(10)}, alerts, [("c", 0.0, None)], 90.0) == []
    series = {"campaign:c/visitors": np.ones(10), "campaign:c/conversions": np.zeros(10)}
    # the alert covers the whole campaign: no rate outside it to compare with
    assert incident_costs(ts, series, alerts, [("c", 60.0, 90.0)], 90.0) == []
