"""`surgewatch agent` run for real, and this host read three ways: node_exporter, our agent, and psutil.

Runtime: about 4 s (agent start ~1 s, a 2 s CPU window with one core kept busy).
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from surgewatch import agent
from surgewatch.sources.local import LocalHostSource
from surgewatch.sources.prometheus import PROCS, PrometheusHostSource, parse_node_text
from tests.support.servers import free_port, http_get, start_node_exporter, start_process

SRC = Path(__file__).resolve().parents[2] / "src"
TOKEN = "agent-token-9f3b"


@pytest.fixture(scope="module")
def agent_server(tmp_path_factory):
    work = tmp_path_factory.mktemp("agent")
    token_file = work / "token"
    token_file.write_text(TOKEN + "\n")
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    argv = [sys.executable, "-m", "surgewatch.agent", "--listen", f"127.0.0.1:{port}",
            "--token-file", str(token_file)]
    with start_process("agent", argv, workdir=work, port=port, env=env,
                       ready=lambda: http_get(f"http://127.0.0.1:{port}/metrics") is not None) as server:
        yield server


@pytest.fixture(scope="module")
def node_exporter(tmp_path_factory):
    with start_node_exporter(tmp_path_factory.mktemp("node")) as server:
        yield server


def test_requests_without_the_bearer_token_get_401(agent_server):
    url = f"{agent_server.url}/metrics"
    assert http_get(url)[0] == 401
    assert http_get(url, headers={"Authorization": "Bearer wrong-token"})[0] == 401
    assert http_get(url, headers={"Authorization": f"Basic {TOKEN}"})[0] == 401
    status, body = http_get(url, headers={"Authorization": f"Bearer {TOKEN}"})
    assert status == 200 and b"node_cpu_seconds_total{" in body


def test_the_agent_speaks_node_exporter_names(agent_server, node_exporter):
    _, ours = http_get(f"{agent_server.url}/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    _, theirs = http_get(f"{node_exporter.url}/metrics")
    a, n = parse_node_text(ours.decode()), parse_node_text(theirs.decode())
    assert set(a.gauges) - {PROCS} == set(n.gauges)
    assert PROCS in a.gauges
    assert set(a.cpu) == set(n.cpu)
    assert set(a.disk_read) == set(n.disk_read) and set(a.net_rx) == set(n.net_rx)


BURN_ONE_CORE = "import time\nt = time.time()\nwhile time.time() - t < 20: pass"  # bounded even if orphaned


async def test_this_host_reads_the_same_via_node_exporter_agent_and_psutil(agent_server, node_exporter):
    burner = subprocess.Popen([sys.executable, "-c", BURN_ONE_CORE])
    sources = [
        LocalHostSource("h", 1.0, 2.0),
        PrometheusHostSource("h", f"{node_exporter.url}/metrics", 1.0, 2.0),
        PrometheusHostSource("h", f"{agent_server.url}/metrics", 1.0, 2.0,
                             headers={"Authorization": f"Bearer {TOKEN}"}),
    ]
    try:
        await asyncio.sleep(0.3)  # let the burner reach full speed before the window opens
        await asyncio.gather(*(s.poll() for s in sources))
        await asyncio.sleep(2.0)
        psutil_r, node_r, agent_r = [r.values for r in await asyncio.gather(*(s.poll() for s in sources))]
    finally:
        burner.kill()
        burner.wait()
        for s in sources:
            await s.close()
    cpu = [r["host:h/cpu.percent"] for r in (psutil_r, node_r, agent_r)]
    assert min(cpu) > 40, cpu  # one of the cores was kept busy for the whole window
    assert max(cpu) - min(cpu) < 5, cpu
    cores = {k for k in psutil_r if k.startswith("host:h/cpu.core")}
    assert cores and cores == {k for k in node_r if k.startswith("host:h/cpu.core")} == \
        {k for k in agent_r if k.startswith("host:h/cpu.core")}
    mem = [r["host:h/mem.percent"] for r in (psutil_r, node_r, agent_r)]
    assert max(mem) - min(mem) < 1.5, mem
    load = [r["host:h/load.1"] for r in (psutil_r, node_r, agent_r)]
    assert max(load) - min(load) <= 0.1 + 0.05 * max(load), load
    assert node_r["host:h/swap.percent"] == pytest.approx(agent_r["host:h/swap.percent"], abs=1.0)
    assert agent_r["host:h/procs.count"] == pytest.approx(psutil_r["host:h/procs.count"], rel=0.1)


def test_the_agent_is_a_registered_subcommand():
    from surgewatch.cli import COMMANDS

    assert ("agent", "surgewatch.agent") in {(name, module) for name, module, _help in COMMANDS}


@pytest.mark.parametrize("text", ["9273", "127.0.0.1", "127.0.0.1:http", "127.0.0.1:70000", ":9273"])
def test_a_bad_listen_address_is_refused(text):
    with pytest.raises(agent.AgentError, match="--listen must be HOST:PORT"):
        agent.parse_listen(text)


def test_ipv6_listen_addresses_parse():
    assert agent.parse_listen("[::1]:9273") == ("::1", 9273)


def test_token_file_problems_are_one_line(tmp_path):
    with pytest.raises(agent.AgentError, match="cannot read"):
        agent.read_token(str(tmp_path / "missing"))
    (tmp_path / "empty").write_text("\n")
    with pytest.raises(agent.AgentError, match="one token without spaces"):
        agent.read_token(str(tmp_path / "empty"))


def test_run_reports_a_busy_port_in_one_line(capsys):
    with socket.create_server(("127.0.0.1", 0)) as busy:
        port = busy.getsockname()[1]
        args = agent.argparse.Namespace(listen=f"127.0.0.1:{port}", token_file=None)
        assert agent.run(args) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"surgewatch agent: cannot listen on 127.0.0.1:{port}") and err.count("\n") == 1


def test_without_a_token_the_agent_serves_anyone_and_404s_other_paths():
    server = agent.serve("127.0.0.1:0")
    import threading

    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        status, body = http_get(server.url)
        assert status == 200 and b"node_load1 " in body
        assert http_get(server.url.replace("/metrics", "/other"))[0] == 404
    finally:
        server.shutdown()
        server.server_close()
        thread.join(2)
