"""What the headless daemon imports before it is useful (issue 14: the small end's RSS).

A daemon whose sources and sinks are all on this host never loads OpenSSL (ssl, or hashlib's libcrypto), the
HTTP stack or the UI; and TLS still works the moment something needs it after asyncio was imported without ssl.
Runtime: about 4 s (two daemons for about a second each, one nginx with a throwaway CA).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.servers import make_test_pki, start_nginx_tls
from tests.unit.test_import_contract import NOT_FOR_THE_DEFAULT_DAEMON

ROOT = Path(__file__).resolve().parents[2]

# A local daemon loads no OpenSSL (libssl and libcrypto: ~4.5 MB of RSS), through ssl or hashlib, and none of what
# the default daemon runs without (tests/unit/test_import_contract.py): UI, HTTP clients, recording, cron...
OPENSSL = ("ssl", "_ssl", "_hashlib", "hashlib", "hmac", "secrets")
NOT_FOR_A_LOCAL_DAEMON = (*OPENSSL, *NOT_FOR_THE_DEFAULT_DAEMON, "platformdirs", "prometheus_client", "google",
                          "icalendar", "jinja2")
# ... nor what the analysis, the state dir and the command line only seemed to need: numpy.ma (np.unique,
# np.percentile and np.median import it; analysis/rowstats.py does their arithmetic), tempfile and through it shutil,
# bz2 and lzma (statedir.py makes its own unique files; cli.py wraps help without shutil), the campaign-feed modules
# without a [[campaign_feed]], the planner without a scheduled campaign, snapshots nobody subscribes to, and random
# before a source or a delivery fails (its back-off jitter) or a source polls on its own loop, and psutil for this
# host's total CPU and memory (read from /proc), zoneinfo (with sysconfig) for a config in UTC, and group analysis
# where no host can have a group
NOT_FOR_A_SMALL_DAEMON = ("numpy.ma", "tempfile", "shutil", "bz2", "lzma", "surgewatch.feeds", "surgewatch.snapshot",
                          "surgewatch.analysis.plan", "surgewatch.analysis.preflight", "random", "psutil",
                          "zoneinfo", "surgewatch.analysis.groupmodels")

# Runs the real command line in-process and, after the first ticks, writes the loaded modules to a file and
# stops the daemon with SIGTERM as a service manager would.
PROBE = """
import json, os, signal, sys, threading, time
out = sys.argv[1]
started = threading.Event()
class Tee:  # the daemon's log goes to stderr: see its "started:" line, however loaded the machine is
    def __init__(self, stream):
        self.stream = stream
    def write(self, text):
        if "started:" in text:
            started.set()
        return self.stream.write(text)
    def __getattr__(self, name):
        return getattr(self.stream, name)
sys.stderr = Tee(sys.stderr)
def probe():
    started.wait(50)
    time.sleep(float(os.environ.get("PROBE_AFTER", "1.5")))
    with open(out, "w") as f:
        json.dump(sorted(sys.modules), f)
    os.kill(os.getpid(), signal.SIGTERM)
threading.Thread(target=probe, daemon=True).start()
from surgewatch.cli import main
raise SystemExit(main(sys.argv[2:]))
"""

LOCAL_ONLY = """
[monitor]
interval = "250ms"
state_dir = "{state}"

[[host]]
name = "local"
source = "local"

[[rule]]
name = "cpu-high"
series = "host:*/cpu.percent"
above = 90
for = "30s"

[[sink]]
kind = "stdout"
"""


def daemon_modules(tmp_path: Path, *args: str) -> set[str]:
    out = tmp_path / "modules.json"
    env = dict(os.environ, XDG_STATE_HOME=str(tmp_path / "xdg-state"), PYTHONPATH=str(ROOT / "src"))
    run = subprocess.run([sys.executable, "-c", PROBE, str(out), "--headless", *args], env=env,
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    assert "started:" in run.stderr and "stopped" in run.stderr, run.stderr
    return set(json.loads(out.read_text()))


@pytest.mark.parametrize("config", ["local-only file", "built-in default"])
def test_a_local_daemon_loads_no_openssl_http_client_or_ui(tmp_path: Path, config: str) -> None:
    if config == "local-only file":
        cfg = tmp_path / "local.toml"
        cfg.write_text(LOCAL_ONLY.format(state=tmp_path / "state"))
        modules = daemon_modules(tmp_path, "--config", str(cfg))
    else:  # this host and the DEMO host and campaign: analysis, campaign rules, the demo source
        modules = daemon_modules(tmp_path)
    assert {"surgewatch.engine", "surgewatch.sources.local", "asyncio", "numpy"} <= modules  # it did run
    unwanted = (*NOT_FOR_A_LOCAL_DAEMON, *NOT_FOR_A_SMALL_DAEMON)
    loaded = sorted(m for m in modules if any(m == p or m.startswith(p + ".") for p in unwanted))
    assert loaded == []


def test_a_daemon_started_without_ssl_still_gets_it_for_the_first_https_source(tmp_path: Path) -> None:
    """asyncio imported without ssl, then an https poll through the http client: asyncio's modules get the ssl
    module at its first import (not at a mere look-up), so the verified handshake and the certificate error
    lines are as before."""
    pki = make_test_pki(tmp_path / "pki")
    code = """
import json, sys
from surgewatch.lean import asyncio_without_ssl
assert asyncio_without_ssl() and "ssl" not in sys.modules
import asyncio
assert asyncio.base_events.ssl is None and asyncio.sslproto.ssl is None
import importlib.util
assert importlib.util.find_spec("ssl") is not None and "ssl" not in sys.modules  # a library probing for ssl
from surgewatch.config import TlsConfig
from surgewatch.sources.base import SourceError
from surgewatch.sources.http import HttpPoller

async def get(url, tls):
    p = HttpPoller(label="traffic:shop", timeout=3.0, retries=0, tls=tls)
    try:
        return await p.get_json(url + "/stats.json")
    except SourceError as exc:
        return str(exc)
    finally:
        await p.aclose()

url, ca = sys.argv[1], sys.argv[2]
good = asyncio.run(get(url, TlsConfig(ca_file=ca)))
refused = asyncio.run(get(url, None))
print(json.dumps([good, refused, asyncio.base_events.ssl is sys.modules["ssl"],
                  asyncio.sslproto.ssl is sys.modules["ssl"], asyncio.selector_events.ssl is sys.modules["ssl"]]))
"""
    with start_nginx_tls(tmp_path / "nginx", pki) as nginx:
        (nginx.workdir / "html" / "stats.json").write_text(json.dumps({"visitors": 42}))
        url = nginx.extra["https"]["good"]
        env = dict(os.environ, PYTHONPATH=str(ROOT / "src"))
        run = subprocess.run([sys.executable, "-c", code, url, str(pki["ca"])], env=env, capture_output=True,
                             text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    good, refused, *handed = json.loads(run.stdout)
    assert good == {"visitors": 42}
    port = url.rsplit(":", 1)[1]
    assert refused == (f"traffic:shop: TLS certificate of 127.0.0.1:{port} is signed by an unknown CA "
                       f"(set ca_file to the CA that signed it) (GET {url}/stats.json)")
    assert handed == [True, True, True]


@pytest.mark.parametrize("frontend", [["--headless"], []])
def test_a_bad_config_still_gets_its_one_line_and_leaves_the_collector_on(tmp_path: Path, frontend: list[str]) -> None:
    """The command line pauses cyclic garbage collection for start-up; a frontend that returns early on a bad
    config gives the same one-line error and exit 2, and the collector is on again afterwards. (In a child:
    the daemon's logging set-up would outlive the test.)"""
    bad = tmp_path / "bad.toml"
    bad.write_text("[monitor]\ninterval = 5\n")
    code = ("import gc, sys\nfrom surgewatch.cli import main\nassert gc.isenabled()\ncode = main(sys.argv[1:])\n"
            "print(code, gc.isenabled())")
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"))
    run = subprocess.run([sys.executable, "-c", code, *frontend, "--config", str(bad)], env=env,
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 0 and run.stdout.split() == ["2", "True"]
    assert run.stderr.count("\n") == 1 and "interval must be a duration" in run.stderr
    assert "Traceback" not in run.stderr
