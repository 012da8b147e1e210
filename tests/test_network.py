"""A hostile or broken network, against the real local server: redirects never carry the key
to another host nor into a file, every answer has a size cap and every request a deadline,
and errors that asking again cannot fix are not retried.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest
import requests

from kratomlit.search import IN_FLIGHT
from tests.eutils_server import EUtilsServer, gzip_bomb, synthetic_doc
from tests.helpers import library_pmids
from tests.test_secrets import _files_bytes, _forms

ROOT = Path(__file__).resolve().parents[1]
TERM = "net"
N_DOCS = 600  # two EFetch batches


@pytest.fixture
def net(server: EUtilsServer) -> EUtilsServer:
    server.state.add_docs([synthetic_doc(6_600_000 + i, date(2001 + i % 20, 3, 1))
                           for i in range(N_DOCS)], term=TERM)
    return server


@pytest.fixture
def other(net: EUtilsServer) -> Iterator[EUtilsServer]:
    """A second server holding the same records: where redirects point."""
    with EUtilsServer().running() as srv:
        srv.state.docs, srv.state.terms = net.state.docs, net.state.terms
        yield srv


def _base(srv: EUtilsServer, host: str) -> str:
    return f"http://{host}:{srv.server_address[1]}/entrez/eutils/"


# ---- redirects --------------------------------------------------------------------------

SAME_HOST = {  # name: (faults on the first server, redirect every request with this status)
    "301 on a GET (ESearch)": ({"esearch": ["301"]}, ""),
    "302 on a GET (ESearch)": ({"esearch": ["302"]}, ""),
    "307 on a POST (EFetch)": ({"efetch": ["307"]}, ""),
    "308 on a POST (EFetch)": ({"efetch": ["308"]}, ""),
    "301 on a POST (EFetch)": ({"efetch": ["301"]}, ""),
    "moved for good, as http to https (every request 301, another port)": ({}, "301"),
}


@pytest.mark.parametrize("name", list(SAME_HOST))
def test_same_host_redirects_are_followed_and_store_no_secret(name, cli, net, other, env):
    faults, every = SAME_HOST[name]
    net.state.faults = {k: list(v) for k, v in faults.items()}
    net.state.redirect_all = every
    net.state.redirect_to = _base(other, "127.0.0.1")  # same host name, other port
    result = cli("search", TERM, "--json")
    assert result.exit_code == 0, result.stderr
    assert sorted(library_pmids(env)) == sorted(net.state.truth(TERM))
    assert json.loads(result.stdout)["new"] == N_DOCS
    assert other.state.log and all(e.status == 200 for e in other.state.log)
    efetches = [e for e in other.state.log if e.endpoint == "efetch"]
    assert all(e.method == "POST" and e.params["id"] for e in efetches)  # PMIDs re-sent
    if every:  # a permanent move is remembered: one redirect, then straight to the new place
        assert len(net.state.log) == 1
    files = _files_bytes(Path(env["KRATOMLIT_HOME"]))
    for secret in (env["NCBI_API_KEY"], env["NCBI_EMAIL"]):
        for form in _forms(secret):
            assert not [str(p) for p, data in files.items() if form in data], form


def test_each_redirect_hop_counts_against_the_rate_limit(cli, net, other, env, monkeypatch):
    monkeypatch.delenv("NCBI_API_KEY")  # 3 requests/s
    net.state.faults = {"esearch": ["302"] * 3, "efetch": ["307"] * 3}
    net.state.page_cap = other.state.page_cap = 200  # three ESearch pages
    net.state.redirect_to = _base(other, "127.0.0.1")
    result = cli("search", TERM, "--json")
    assert result.exit_code == 0, result.stderr
    assert sorted(library_pmids(env)) == sorted(net.state.truth(TERM))
    times = sorted(e.t for e in net.state.log + other.state.log)
    assert len(times) == 10  # 3 ESearch pages and 2 EFetch batches, each redirected once
    assert max(sum(1 for u in times if t <= u < t + 1.0) for t in times) <= 3


@pytest.mark.parametrize("fault", ["301", "302", "303", "307", "308"])
@pytest.mark.parametrize("endpoint", ["esearch", "efetch"])
def test_a_redirect_to_another_host_is_refused_and_sends_it_nothing(
        fault, endpoint, cli, net, other, env):
    net.state.faults = {endpoint: [fault] * 10}
    net.state.redirect_to = _base(other, "localhost")  # the same machine, another host name
    started = time.monotonic()
    result = cli("search", TERM)
    assert time.monotonic() - started < 10
    assert result.exit_code == 4, result.stderr
    assert "redirected the request to http://localhost:" in result.stderr
    assert "KRATOMLIT_EUTILS_URL" in result.stderr and "Traceback" not in result.stderr
    assert other.state.log == []  # neither the key nor anything else reached it
    sent = [e.params.get("id") for e in net.state.requests(endpoint)]
    if endpoint == "efetch":  # not retried; the other batch's request may be on the wire
        assert 1 <= len(sent) == len(set(sent)) <= IN_FLIGHT
    else:
        assert len(sent) == 1  # not retried
    files = _files_bytes(Path(env["KRATOMLIT_HOME"]))
    for form in _forms(env["NCBI_API_KEY"]):
        assert not [str(p) for p, data in files.items() if form in data]


def test_https_is_never_downgraded_to_http():
    from kratomlit.errors import NCBIError
    from kratomlit.eutils import EUtilsClient

    client = EUtilsClient(requests.Session(), "https://127.0.0.1/x/")
    resp = requests.Response()
    resp.status_code, resp.headers["Location"] = 301, "http://127.0.0.1/x/esearch.fcgi"
    with pytest.raises(NCBIError, match="does not follow"):
        client._follow("https://127.0.0.1/x/esearch.fcgi", "GET", resp)


# ---- size cap ----------------------------------------------------------------------------

def test_a_gzip_bomb_is_cut_at_the_cap_retried_and_never_cached(cli, net, env, monkeypatch):
    monkeypatch.setenv("KRATOMLIT_MAX_RESPONSE_MB", "1")
    monkeypatch.setenv("KRATOMLIT_MAX_TRIES", "2")
    net.state.bodies["bomb"] = gzip_bomb(64)  # 64 KB that expands to 64 MB
    net.state.faults = {"esearch": ["gzip:bomb"] * 5}
    result = cli("search", TERM)
    assert result.exit_code == 3, result.stderr
    assert "larger than 1 MB once decompressed" in result.stderr
    assert "KRATOMLIT_MAX_RESPONSE_MB" in result.stderr and "Traceback" not in result.stderr
    assert len(net.state.requests("esearch")) == 2  # transient: retried, up to max_tries
    cache = Path(env["KRATOMLIT_HOME"]) / "http_cache.sqlite"
    assert sum(p.stat().st_size for p in cache.parent.glob("http_cache.sqlite*")) < 2**20
    net.state.faults = {"esearch": ["gzip:bomb"]}  # once: the retry gets the real answer
    again = cli("search", TERM, "--json")
    assert again.exit_code == 0 and json.loads(again.stdout)["new"] == N_DOCS


def test_an_answer_under_the_cap_is_whole(cli, server, env, monkeypatch):
    monkeypatch.setenv("KRATOMLIT_MAX_RESPONSE_MB", "1")
    doc = synthetic_doc(6_700_001, date(2020, 1, 1))
    doc.xml = doc.xml.replace("Abstract of record", "x" * 900_000 + " Abstract of record")
    server.state.add_docs([doc], term="big")
    result = cli("search", "big", "--json")
    assert result.exit_code == 0, result.stderr
    assert library_pmids(env) == [6_700_001]


# The CLI run in a child that reports its own peak RSS: VmHWM belongs to the process image
# after exec, whereas wait4's ru_maxrss also counts the (large) pytest parent forked from.
PEAK_RSS = """
import runpy, sys
try:
    runpy.run_module("kratomlit", run_name="__main__")
finally:
    with open("/proc/self/status") as status:
        sys.stderr.write(next(line for line in status if line.startswith("VmHWM")))
"""


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs Linux /proc")
def test_a_one_gigabyte_bomb_ends_with_bounded_memory(net, env):
    net.state.bodies["bomb"] = gzip_bomb(1024)  # 1 MB on the wire, 1 GB decompressed
    net.state.faults = {"efetch": ["gzip:bomb"] * 5}
    run_env = {**os.environ, **env, "KRATOMLIT_MAX_TRIES": "2"}
    done = subprocess.run([sys.executable, "-c", PEAK_RSS, "search", TERM], env=run_env,
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 3, done.stderr
    assert "larger than 100 MB once decompressed" in done.stderr  # the default cap
    peak_kb = int(done.stderr.rsplit("VmHWM:", 1)[1].split()[0])
    assert peak_kb < 400 * 1024, peak_kb  # far below the 1 GB answer
    # two tries of one batch, and the other batch's request if it was already on the wire
    assert 2 <= len(net.state.requests("efetch")) <= 2 + IN_FLIGHT - 1


# ---- deadline ----------------------------------------------------------------------------

@pytest.mark.parametrize("fault", ["trickle", "slowheaders"])
def test_a_server_trickling_a_byte_at_a_time_is_cut_off_at_the_deadline(fault, cli, net, env,
                                                                       monkeypatch):
    monkeypatch.setenv("KRATOMLIT_TIMEOUT", "1")  # each byte arrives well within it
    monkeypatch.setenv("KRATOMLIT_MAX_TRIES", "2")
    net.state.trickle_s = 0.2
    net.state.faults = {"esearch": [fault] * 5}
    started = time.monotonic()
    result = cli("search", TERM)
    took = time.monotonic() - started
    assert result.exit_code == 3, result.stderr
    assert "no complete answer within 4 s" in result.stderr
    assert 2 * 4 <= took < 2 * 4 + 4  # two tries of 4 x --timeout each
    assert len(net.state.requests("esearch")) == 2


def test_a_trickled_answer_inside_the_deadline_is_kept(cli, net, env, monkeypatch):
    from kratomlit import transport

    monkeypatch.setattr(transport, "DEADLINE_FACTOR", 100)
    monkeypatch.setenv("KRATOMLIT_TIMEOUT", "1")
    net.state.trickle_s = 0.0005
    net.state.faults = {"esearch": ["trickle"]}
    result = cli("search", TERM, "--max", "5", "--json")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["retries"] == 0 and len(library_pmids(env)) == 5


# ---- permanent errors are not retried ------------------------------------------------------

@pytest.mark.parametrize("url", ["http://127.0.0.1:notaport/", "http://127.0.0.1:99999/",
                                 "http://:8080/entrez/", "http://exa mple.org/"])
@pytest.mark.parametrize("how", ["file", "env", "option"])
def test_an_unusable_url_is_a_usage_error_at_once(url, how, cli, env, monkeypatch):
    home = Path(env["KRATOMLIT_HOME"])
    args = ["search", TERM]
    if how == "file":
        home.mkdir(parents=True)
        (home / "config.toml").write_text(f'eutils_url = "{url}"\n')
        monkeypatch.delenv("KRATOMLIT_EUTILS_URL")
    elif how == "env":
        monkeypatch.setenv("KRATOMLIT_EUTILS_URL", url)
    else:
        args = ["--eutils-url", url, *args]
    started = time.monotonic()
    result = cli(*args)
    assert time.monotonic() - started < 5
    assert result.exit_code == 2 and "not usable" in result.stderr, result.stderr
    assert not (home / "library.db").exists()


def test_a_url_requests_cannot_use_is_not_retried(server, env):
    from kratomlit.errors import UsageError
    from kratomlit.eutils import EUtilsClient

    tries: list[float] = []
    client = EUtilsClient(requests.Session(), "http://127.0.0.1:notaport/", sleep=tries.append)
    with pytest.raises(UsageError, match="cannot be used"):
        client.esearch("kratom")
    assert tries == [] and client.stats.network == 0
