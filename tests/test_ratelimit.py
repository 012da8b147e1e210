"""NCBI's request limit holds within a process and across processes sharing KRATOMLIT_HOME."""

from __future__ import annotations

import subprocess
import sys
import time
from datetime import date
from pathlib import Path

from kratomlit.config import load_settings
from kratomlit.eutils import EUtilsClient
from kratomlit.session import make_session
from tests.eutils_server import synthetic_doc

ACQUIRE = """
import sys, time
from pathlib import Path
from kratomlit.config import load_settings
from kratomlit.session import make_limiter
limiter = make_limiter(load_settings({"home": Path(sys.argv[1])}, env={}))
for _ in range(6):
    limiter.try_acquire("eutils", blocking=True)
    print(time.time(), flush=True)
"""


def _max_in_1s(times: list[float]) -> int:
    times = sorted(times)
    return max(sum(1 for u in times if t <= u < t + 1.0) for t in times)


def test_three_per_second_without_key_in_one_process(server, env, monkeypatch):
    monkeypatch.delenv("NCBI_API_KEY")
    server.state.add_docs([synthetic_doc(6_000_000 + i, date(2020, 1, 1)) for i in range(6)],
                          term="six")
    settings = load_settings()
    assert settings.requests_per_second == 3
    with make_session(settings) as session:
        client = EUtilsClient(session, server.url, page_size=1)
        start = time.monotonic()
        assert len(client.search("six").ids) == 6
    assert time.monotonic() - start >= 1.0
    assert server.state.max_in_window(1.0) <= 3


def test_two_processes_share_one_budget(tmp_path: Path):
    home = tmp_path / "home"
    procs = [subprocess.Popen([sys.executable, "-c", ACQUIRE, str(home)],
                              stdout=subprocess.PIPE, text=True,
                              cwd=Path(__file__).resolve().parents[1]) for _ in range(2)]
    times = [float(line) for p in procs for line in p.communicate(timeout=60)[0].split()]
    assert len(times) == 12
    assert _max_in_1s(times) <= 3


def test_two_cli_runs_side_by_side_stay_under_the_limit(server, env, tmp_path):
    import json
    import os

    for name, base in (("cron", 8_000_000), ("analyst", 8_100_000)):
        server.state.add_docs([synthetic_doc(base + i, date(2021, 3, 3)) for i in range(1100)],
                              term=name)
    run_env = {**os.environ, **env}
    run_env.pop("NCBI_API_KEY")  # 3 requests/s
    procs = [subprocess.Popen([sys.executable, "-m", "kratomlit", "search", term, "--json"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              env=run_env, cwd=Path(__file__).resolve().parents[1])
             for term in ("cron", "analyst")]
    outputs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outputs
    assert [json.loads(out)["new"] for out, _ in outputs] == [1100, 1100]
    assert len(server.state.log) == 8
    assert server.state.max_in_window(1.0) <= 3
    assert all(e.status == 200 for e in server.state.log)
