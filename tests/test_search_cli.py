"""`kratomlit search` and `export` driven through the real CLI against a real local server."""

from __future__ import annotations

import json
from datetime import date, timedelta

import pandas as pd

from tests.eutils_server import synthetic_doc


def test_search_stores_every_hit_and_reports_json(cli, kratom_server):
    result = cli("search", "kratom", "--json")
    assert result.exit_code == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["count"] == 4 and summary["listed"] == 4 and summary["new"] == 4
    assert summary["network_requests"] == 2  # one esearch, one efetch batch
    fetch = kratom_server.state.requests("efetch")[0]
    assert fetch.method == "POST" and fetch.params["tool"] == "kratomlit"
    assert fetch.params["email"] == "tests@example.org"


def test_identical_second_run_makes_no_efetch(cli, kratom_server):
    assert cli("search", "kratom", "--json").exit_code == 0
    before = len(kratom_server.state.requests("efetch"))
    result = cli("search", "kratom", "--json")
    summary = json.loads(result.stdout)
    assert len(kratom_server.state.requests("efetch")) == before
    assert summary["new"] == 0 and summary["already_held"] == 4
    assert summary["from_cache"] >= 1  # the esearch answer came from the HTTP cache


def test_export_csv_loads_in_pandas_one_row_per_pmid(cli, kratom_server, tmp_path):
    cli("search", "kratom")
    out = tmp_path / "kratom.csv"
    result = cli("export", "--format", "csv", "--output", str(out))
    assert result.exit_code == 0, result.stderr
    df = pd.read_csv(out)  # as a user would: pandas skips the BOM
    assert sorted(df["pmid"]) == [90000001, 90000002, 90000003, 90000004]
    row = df.set_index("pmid").loc[90000002]
    assert row["title"].startswith("'=HYPERLINK")  # formula neutralised
    assert bool(row["retracted"]) and row["pub_date"] == "2019 Jan-Feb"
    assert df.set_index("pmid").loc[90000001, "searches"] == "kratom"
    assert not list(tmp_path.glob(".kratom.csv.*"))  # no temporary file left


def test_export_jsonl_keeps_lists_and_raw_text(cli, kratom_server, tmp_path):
    cli("search", "kratom")
    out = tmp_path / "kratom.jsonl"
    assert cli("export", "-f", "jsonl", "-o", str(out)).exit_code == 0
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(rows) == 4
    assert rows[1]["title"].startswith("=HYPERLINK")  # JSON is not escaped


def test_search_over_9999_hits_is_split_by_date(cli, server):
    start = date(2000, 1, 1)
    docs = [synthetic_doc(1_000_000 + i, start + timedelta(days=i // 4)) for i in range(12_500)]
    server.state.add_docs(docs, term="big")
    result = cli("search", "big", "--json")
    assert result.exit_code == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["count"] == 12_500 and summary["listed"] == 12_500
    assert summary["new"] == 12_500 and summary["slices"] >= 2
    for req in server.state.requests("esearch"):
        assert int(req.params.get("retstart", 0)) <= 9998




def test_faults_are_retried_and_nothing_is_lost(cli, kratom_server):
    kratom_server.state.faults = {"esearch": ["429", "500"],
                                  "efetch": ["reset", "truncate", "html200", "429"]}
    result = cli("search", "kratom", "--json")
    assert result.exit_code == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["new"] == 4 and summary["retries"] == 6


def test_complete_but_broken_xml_is_fetched_again(cli, server):
    docs = [synthetic_doc(9_600_000 + i, date(2020, 1, 1)) for i in range(1200)]
    server.state.add_docs(docs, term="broken")
    server.state.faults = {"efetch": [None, "malformed"]}
    summary = json.loads(cli("search", "broken", "--json").stdout)
    assert summary["new"] == 1200 and summary["retries"] == 1
    assert len(server.state.requests("efetch")) == 4  # 3 batches, one of them twice


def test_persistent_failure_gives_one_clear_line(cli, kratom_server):
    kratom_server.state.faults = {"esearch": ["500"] * 10}
    result = cli("search", "kratom")
    assert result.exit_code == 3
    assert "Could not get an answer from" in result.stderr and "HTTP 500" in result.stderr
    assert "Traceback" not in result.stderr


def test_unreachable_ncbi_names_the_url(cli, env, monkeypatch):
    monkeypatch.setenv("KRATOMLIT_EUTILS_URL", "http://127.0.0.1:9/entrez/eutils/")
    result = cli("search", "kratom")
    assert result.exit_code == 3
    assert "http://127.0.0.1:9/entrez/eutils/esearch.fcgi" in result.stderr
    assert "connection refused" in result.stderr


def test_query_syntax_error_is_an_ncbi_error(cli, kratom_server):
    result = cli("search", "((kratom")
    assert result.exit_code == 4
    assert "query syntax error" in result.stderr


def test_phrase_not_found_is_reported(cli, kratom_server):
    result = cli("search", "kratmo", "--json")
    assert result.exit_code == 0
    summary = json.loads(result.stdout)
    assert summary["count"] == 0
    assert "phrase not found: kratmo" in summary["warnings"]


def test_max_limits_the_records_fetched(cli, kratom_server):
    summary = json.loads(cli("search", "kratom", "--max", "2", "--json").stdout)
    assert summary["count"] == 4 and summary["listed"] == 2 and summary["new"] == 2


def test_saved_search_runs_and_exports_by_name(cli, server, tmp_path):
    from kratomlit.queries import get_query

    term = get_query("kratom-oud").term
    server.state.add_docs([synthetic_doc(3_000_001, date(2022, 1, 1))], term=term)
    assert cli("search", "--saved", "kratom-oud").exit_code == 0
    out = tmp_path / "oud.csv"
    assert cli("export", "--saved", "kratom-oud", "-o", str(out)).exit_code == 0
    assert list(pd.read_csv(out)["searches"]) == ["kratom-oud"]


def test_bad_input_is_a_usage_error(cli, kratom_server):
    assert cli("search").exit_code == 2
    assert cli("search", "kratom", "--mindate", "2020-13-01").exit_code == 2
    assert cli("search", "--saved", "nope").exit_code == 2
    bad = cli("search", "kratom", "--mindate", "2021", "--maxdate", "2020")
    assert bad.exit_code == 2 and "after" in bad.stderr


def test_missing_email_warns_but_works(cli, kratom_server, monkeypatch):
    monkeypatch.delenv("NCBI_EMAIL")
    result = cli("search", "kratom")
    assert result.exit_code == 0
    assert result.stderr.count("NCBI_EMAIL is not set") == 1
    assert "email" not in kratom_server.state.requests("esearch")[0].params


def test_rate_limit_errors_never_show_the_api_key(cli, kratom_server, env):
    kratom_server.state.faults = {"esearch": ["429"] * 12}
    result = cli("search", "kratom")
    assert result.exit_code == 3 and "API rate limit exceeded" in result.stderr
    assert env["NCBI_API_KEY"] not in result.stderr
    log = (__import__("pathlib").Path(env["KRATOMLIT_HOME"]) / "logs" / "kratomlit.log")
    assert env["NCBI_API_KEY"] not in log.read_text()


def test_markup_in_a_term_is_shown_literally(cli, server):
    server.state.add_docs([synthetic_doc(9_400_001, date(2020, 1, 1))], term="kratom[/tiab]")
    result = cli("search", "kratom[/tiab]")
    assert result.exit_code == 0, result.stderr
    assert "kratom[/tiab]" in result.stdout


def test_a_revised_record_is_refetched_and_an_unrevised_one_is_not(cli, server, tmp_path):
    today = date.today()
    old = synthetic_doc(9_500_001, date(2020, 1, 1), mdat=date(2020, 2, 2))
    fresh = synthetic_doc(9_500_002, date(2020, 1, 1), mdat=today)  # revised today, pre-run
    server.state.add_docs([old, fresh], term="revised")
    assert json.loads(cli("search", "revised", "--json").stdout)["new"] == 2
    fetches = len(server.state.requests("efetch"))
    again = json.loads(cli("search", "revised", "--json").stdout)
    assert again["updated"] == 0 and again["already_held"] == 2
    assert len(server.state.requests("efetch")) == fetches  # identical run: no efetch
    server.state.docs[old.pmid] = synthetic_doc(old.pmid, old.pdat, "Corrected title", today)
    third = json.loads(cli("search", "revised", "--json").stdout)
    assert third["updated"] == 1 and third["new"] == 0 and third["already_held"] == 1
    assert cli("export", "-f", "jsonl", "-o", str(tmp_path / "r.jsonl")).exit_code == 0
    assert "Corrected title" in (tmp_path / "r.jsonl").read_text()


def test_the_next_batch_is_fetched_while_this_one_is_stored(server, env):
    """Download overlaps storing: later batches are requested while the caller is
    still busy with batch k, and every batch arrives once, in order."""
    import time

    from kratomlit.config import load_settings
    from kratomlit.eutils import EUtilsClient
    from kratomlit.search import prefetched
    from kratomlit.session import make_session

    docs = [synthetic_doc(3_000_000 + i, date(2020, 1, 1)) for i in range(9)]
    server.state.add_docs(docs, term="overlap")
    server.state.delays = {"efetch": 0.3}
    busy: list[tuple[float, float]] = []
    with make_session(load_settings()) as session:
        client = EUtilsClient(session, server.url, batch_size=3, sleep=lambda s: None)
        batches = list(client.batches([d.pmid for d in docs]))
        got = []
        for batch, parsed in prefetched(client, batches):
            start = time.time()  # the server logs arrivals with time.time()
            got.append((batch, sorted(r.pmid for r in parsed.records)))
            time.sleep(0.5)  # "storing"
            busy.append((start, time.time()))
    assert got == [(b, b) for b in batches]
    arrivals = [r.t for r in server.state.requests("efetch")]
    assert len(arrivals) == 3
    # every later batch was requested before the caller had finished "storing" the one
    # before it (up to three ahead, three requests at once)
    assert all(arrivals[k + 1] < busy[k][1] for k in range(2)), (busy, arrivals)
    # and the last answer was in before the first batch was stored, not after it
    assert arrivals[2] < busy[0][1], (busy, arrivals)
