"""HTTPS for real: nginx on 127.0.0.1 with a throwaway CA made by the test (openssl), polled and posted to.

Verification is on by default; `ca_file` trusts the test CA; `tls_verify = false` accepts anything and is
named by `check` and the Sources screen; client certificates pass nginx's `ssl_verify_client on`; expired,
wrong-host and unknown-CA certificates each give one clear line. Sinks get the same options and errors.
Runtime: about 3 s (one nginx and one PKI for the module).
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from surgewatch.alerting.sinks import AlertmanagerSink, SinkError, SlackSink, WebhookSink, build_sink
from surgewatch.config import ConfigError, TlsConfig, parse_config
from surgewatch.model import AlertEvent, Cause, Severity
from surgewatch.sources import build_sources
from surgewatch.sources.base import SourceError
from surgewatch.sources.http import HttpPoller
from tests.support.servers import CannedHttpServer, make_test_pki, start_nginx_tls

DOC = {"data": {"visitors": 42}}


class Hooks:
    """The plain-HTTP receiver behind nginx's TLS: records every JSON body posted to /hook/…."""

    def __init__(self) -> None:
        self.bodies: list[tuple[str, object]] = []

    def __call__(self, handler):
        self.bodies.append((handler.path, json.loads(handler.body)))
        return 200, {"Content-Type": "text/plain"}, b"ok"


@pytest.fixture(scope="module")
def tls(tmp_path_factory):
    work = tmp_path_factory.mktemp("tls")
    pki = make_test_pki(work / "pki")
    hooks = Hooks()
    routes = {p: hooks for p in ("/hook/webhook", "/hook/slack", "/hook/am/api/v2/alerts")}
    with CannedHttpServer(routes) as backend, start_nginx_tls(work / "nginx", pki, backend=backend.url) as nginx:
        (nginx.workdir / "html" / "stats.json").write_text(json.dumps(DOC))
        yield pki, {**nginx.extra["https"], "plain": nginx.url}, hooks


async def get(url: str, tls: TlsConfig | None = None) -> object:
    p = HttpPoller(label="traffic:shop", timeout=3.0, retries=0, tls=tls)
    try:
        return await p.get_json(url + "/stats.json")
    finally:
        await p.aclose()


async def test_polls_through_tls_when_ca_file_names_the_ca(tls):
    pki, https, _ = tls
    assert await get(https["good"], TlsConfig(ca_file=str(pki["ca"]))) == DOC


async def test_verification_is_on_by_default_so_a_private_ca_is_refused(tls):
    _, https, _ = tls
    with pytest.raises(SourceError) as info:
        await get(https["good"])
    port = https["good"].rsplit(":", 1)[1]
    assert str(info.value) == (f"traffic:shop: TLS certificate of 127.0.0.1:{port} is signed by an unknown CA "
                               f"(set ca_file to the CA that signed it) (GET {https['good']}/stats.json)")


@pytest.mark.parametrize(("role", "line"), [
    ("expired", "has expired"),
    ("wrong_host", "is not valid for host name 127.0.0.1"),
    ("stranger", "is signed by an unknown CA"),
])
async def test_each_certificate_problem_has_its_own_line(tls, role, line):
    pki, https, _ = tls
    with pytest.raises(SourceError) as info:
        await get(https[role], TlsConfig(ca_file=str(pki["ca"])))
    msg = str(info.value)
    assert f"TLS certificate of 127.0.0.1:{https[role].rsplit(':', 1)[1]} {line}" in msg
    assert "\n" not in msg and "Traceback" not in msg


async def test_https_to_a_plain_http_port_is_one_tls_line(tls):
    _, https, _ = tls
    port = https["plain"].rsplit(":", 1)[1]
    with pytest.raises(SourceError) as info:
        await get(https["plain"].replace("http://", "https://"))
    assert f"TLS failed with 127.0.0.1:{port}: wrong version number" in str(info.value)


async def test_tls_verify_false_accepts_any_certificate(tls):
    _, https, _ = tls
    for role in ("stranger", "expired", "wrong_host"):
        assert await get(https[role], TlsConfig(verify=False)) == DOC


async def test_mtls_needs_the_client_certificate(tls):
    pki, https, _ = tls
    ca = str(pki["ca"])
    with pytest.raises(SourceError, match="HTTP 400 Bad Request"):
        await get(https["mtls"], TlsConfig(ca_file=ca))
    got = await get(https["mtls"], TlsConfig(ca_file=ca, cert_file=str(pki["client"]), key_file=str(pki["client_key"])))
    assert got == DOC


async def test_an_unloadable_client_certificate_is_one_line(tls, tmp_path):
    pki, https, _ = tls
    junk = tmp_path / "junk.pem"
    junk.write_text("not a certificate\n")
    with pytest.raises(SourceError) as info:
        await get(https["mtls"], TlsConfig(ca_file=str(pki["ca"]), cert_file=str(junk)))
    assert f"cannot load cert_file {junk}" in str(info.value) and "\n" not in str(info.value)


def tls_config(pki, https, role: str, extra: str) -> str:
    return (f'[[traffic]]\nname = "shop"\nsource = "json"\nurl = "{https[role]}/stats.json"\n'
            f'value = "data.visitors"\n{extra}\n')


async def test_config_keys_reach_the_source_end_to_end(tls):
    pki, https, _ = tls
    cfg = parse_config(tls_config(pki, https, "mtls", f'ca_file = "{pki["ca"]}"\ncert_file = "{pki["client"]}"\n'
                                                      f'key_file = "{pki["client_key"]}"'))
    [source] = build_sources(cfg)
    try:
        reading = await source.poll()
    finally:
        await source.close()
    assert reading.values["traffic:shop/visitors"] == 42.0


def test_config_refuses_missing_tls_files_and_a_key_without_a_cert(tls, tmp_path):
    pki, https, _ = tls
    with pytest.raises(ConfigError, match=r"config.toml:6: traffic \"shop\": ca_file '/no/such.pem' is not a"):
        parse_config(tls_config(pki, https, "good", 'ca_file = "/no/such.pem"'))
    with pytest.raises(ConfigError, match="key_file needs cert_file"):
        parse_config(tls_config(pki, https, "good", f'key_file = "{pki["client_key"]}"'))
    with pytest.raises(ConfigError, match="tls_verify must be true or false"):
        parse_config(tls_config(pki, https, "good", 'tls_verify = "no"'))


def test_check_names_every_unverified_source_and_sink(tls, tmp_path):
    pki, https, _ = tls
    cfg = tmp_path / "insecure.toml"
    cfg.write_text(tls_config(pki, https, "stranger", "tls_verify = false")
                   + f'\n[[sink]]\nkind = "webhook"\nurl = "{https["good"]}/hook/webhook"\ntls_verify = false\n')
    out = subprocess.run([sys.executable, "-m", "surgewatch", "check", "--config", str(cfg), "--gap", "0"],
                         capture_output=True, text=True, timeout=60)
    assert out.stdout.startswith("OK - 1 series from 1/1 sources"), out.stdout + out.stderr
    assert "WARNING traffic:shop: tls_verify = false, its TLS certificate is NOT verified" in out.stdout
    assert "WARNING sink webhook 1: tls_verify = false" in out.stdout
    out = subprocess.run([sys.executable, "-m", "surgewatch", "check", "--json", "--config", str(cfg), "--gap", "0"],
                         capture_output=True, text=True, timeout=60)
    assert json.loads(out.stdout)["tls_unverified"] == ["traffic:shop", "sink webhook 1"]


def test_the_sources_screen_flags_unverified_tls():
    from rich.console import Console

    from surgewatch.snapshot import SourceView
    from surgewatch.tui.screens.tables import source_lines

    views = [SourceView("traffic:shop", False, True, False, None, 99.0, 0.01, 5.0, 3, 0, insecure_tls=True),
             SourceView("host:web-1", False, True, False, None, 99.0, 0.01, 5.0, 3, 0)]
    console = Console(width=140, record=True, color_system=None)
    console.print(source_lines(views, 100.0, 140, lambda name: ""))
    text = console.export_text()
    assert "traffic:shop TLS-UNVERIFIED" in text and "host:web-1 TLS" not in text
    assert "WARNING tls_verify = false: certificates are NOT verified for traffic:shop" in text


# ---------------------------------------------------------------------------------------------
# Sinks


def event() -> AlertEvent:
    return AlertEvent(ts=1_795_000_000.0, event="firing", rule="cpu", severity=Severity.CRITICAL,
                      series="host:web-1/cpu.percent", value=97.0, expected=40.0, summary="web-1 CPU 97%",
                      explanation="traffic only +4%", fingerprint="fp0001", started=1_795_000_000.0,
                      cause=Cause.UNEXPLAINED)


@pytest.mark.parametrize("kind", ["webhook", "slack", "alertmanager"])
async def test_sinks_deliver_over_tls_with_ca_file_and_client_certificates(tls, kind):
    pki, https, hooks = tls
    path = {"webhook": "/hook/webhook", "slack": "/hook/slack", "alertmanager": "/hook/am"}[kind]
    cfg = parse_config(f'[[sink]]\nkind = "{kind}"\nurl = "{https["mtls"]}{path}"\nca_file = "{pki["ca"]}"\n'
                       f'cert_file = "{pki["client"]}"\nkey_file = "{pki["client_key"]}"\n')
    sink = build_sink(cfg.sinks[0])
    before = len(hooks.bodies)
    try:
        await sink.send([event()])
    finally:
        await sink.close()
    assert len(hooks.bodies) == before + 1
    assert "cpu" in json.dumps(hooks.bodies[-1][1])


@pytest.mark.parametrize(("role", "line"), [("expired", "has expired"),
                                            ("wrong_host", "is not valid for host name 127.0.0.1"),
                                            ("stranger", "is signed by an unknown CA")])
@pytest.mark.parametrize("cls", [WebhookSink, SlackSink, AlertmanagerSink])
async def test_sinks_name_the_certificate_problem_in_one_line(tls, role, line, cls):
    pki, https, _ = tls
    sink = cls(f"{https[role]}/hook/webhook?token=s3cret-hook", {}, 3.0, tls=TlsConfig(ca_file=str(pki["ca"])))
    with pytest.raises(SinkError) as info:
        await sink.send([event()])
    await sink.close()
    msg = str(info.value)
    assert line in msg and "s3cret-hook" not in msg and "\n" not in msg


async def test_sinks_accept_any_certificate_with_tls_verify_false(tls):
    _, https, hooks = tls
    sink = WebhookSink(f"{https['stranger']}/hook/webhook", {}, 3.0, tls=TlsConfig(verify=False))
    before = len(hooks.bodies)
    await sink.send([event()])
    await sink.close()
    assert len(hooks.bodies) == before + 1


def test_sink_tls_files_are_checked_at_config_load(tls):
    with pytest.raises(ConfigError, match=r"sink \"webhook\": cert_file '/nope.pem' is not a readable file"):
        parse_config('[[sink]]\nkind = "webhook"\nurl = "https://127.0.0.1:1/x"\ncert_file = "/nope.pem"\n')


async def test_the_engine_flags_an_unverified_source_in_its_snapshot(tls, tmp_path):
    from surgewatch.engine import Engine, EngineOptions
    from surgewatch.recording.replay import ReplayDispatcher

    pki, https, _ = tls
    text = (tls_config(pki, https, "stranger", "tls_verify = false")
            + tls_config(pki, https, "good", f'ca_file = "{pki["ca"]}"').replace('"shop"', '"blog"'))
    cfg = parse_config(f'[monitor]\nstate_dir = "{tmp_path}"\n' + text)
    engine = Engine(cfg, EngineOptions(dispatcher=ReplayDispatcher(())))
    try:
        for source in engine.sources:
            assert await engine.collector.poll_once(source)
        engine.tick(engine.clock())
        views = {v.name: v for v in engine.snapshot().sources}
    finally:
        await engine.shutdown(1.0)
    assert views["traffic:shop"].ok and views["traffic:shop"].insecure_tls
    assert views["traffic:blog"].ok and not views["traffic:blog"].insecure_tls


async def test_a_sink_with_an_unloadable_client_certificate_fails_in_one_line(tls, tmp_path):
    _, https, _ = tls
    junk = tmp_path / "junk.pem"
    junk.write_text("not a certificate\n")
    sink = WebhookSink(f"{https['mtls']}/hook/webhook", {}, 3.0, tls=TlsConfig(cert_file=str(junk)))
    with pytest.raises(SinkError) as info:
        await sink.send([event()])
    await sink.close()
    assert f"cannot load cert_file {junk}" in str(info.value) and "\n" not in str(info.value)
