"""`kratomlit report` and `refresh --report` through the real CLI, on a library built by
`refresh` and `search` against the local E-utilities server; every number is checked
against the library as `export --format jsonl` (and SQL) shows it."""

from __future__ import annotations

import base64
import json
import shutil
import sqlite3
import subprocess
from collections import Counter
from datetime import date
from html.parser import HTMLParser
from pathlib import Path

import pandas as pd
import pytest
from PIL import Image

from kratomlit.classify import TOPICS
from tests.eutils_server import EUtilsServer, fixture_docs, synthetic_doc

HOSTILE = "<script>alert('x')</script> & <img src=http://evil.example/x.png> kratom"
DELETED = 603  # a record PubMed deleted: no report or export counts it
NO_YEAR = 620  # a record without a publication year


def _xml(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


@pytest.fixture
def library(cli, server: EUtilsServer, tmp_path: Path, env: dict[str, str]) -> Path:
    """Two refreshes of saved searches 'alpha' and 'beta' (sharing two records), one ad hoc
    search, a deleted record and a title full of markup. Returns the library file."""
    qdir = tmp_path / "queries"
    qdir.mkdir()
    (qdir / "alpha.toml").write_text('name = "alpha"\nterm = "kratom alpha"\n')
    (qdir / "beta.toml").write_text('name = "beta"\nterm = "kratom beta"\n')
    titles = ["Kratom withdrawal symptoms in daily users",
              "Liver injury and hepatotoxicity after kratom use",
              "Mitragynine dose and plasma concentration in volunteers",
              "Kratom use in the United States", _xml(HOSTILE)]
    docs = [synthetic_doc(600 + i, date(2016 + i, 3, 1), title=t) for i, t in enumerate(titles)]
    server.state.add_docs(fixture_docs(), term="kratom alpha")
    server.state.add_docs(docs[:2], term="kratom alpha")
    server.state.add_docs([*docs[1:], fixture_docs()[1]], term="kratom beta")
    assert cli("refresh", "--queries", str(qdir), "--quiet").exit_code == 0
    server.state.add_docs([synthetic_doc(610, date(2025, 1, 1), title="Kratom dependence"),
                           synthetic_doc(611, date(2025, 2, 1))], term="kratom alpha")
    assert cli("refresh", "--queries", str(qdir), "--quiet").exit_code == 0
    server.state.add_docs([synthetic_doc(620, date(2020, 5, 1))], term="kratom gamma")
    assert cli("search", "kratom gamma").exit_code == 0
    path = Path(env["KRATOMLIT_HOME"]) / "library.db"
    with sqlite3.connect(path) as db:
        db.execute("UPDATE records SET deleted_at = '2026-01-01' WHERE pmid = ?", (DELETED,))
        db.execute("UPDATE records SET pub_year = NULL, data = json_set(data, '$.pub_year', "
                   "NULL) WHERE pmid = ?", (NO_YEAR,))  # as when PubMed gives no date
    return path


def export_rows(cli, tmp_path: Path, *args: str) -> list[dict]:
    out = tmp_path / f"export-{len(list(tmp_path.glob('export-*')))}.jsonl"
    result = cli("export", "--format", "jsonl", "--output", str(out), *args)
    assert result.exit_code == 0, result.stderr
    return [json.loads(line) for line in out.read_text().splitlines()]


def expected_years(rows: list[dict]) -> list[dict]:
    """topics_by_year.csv as a reviewer would count it from the export."""
    years: dict[int, Counter] = {}
    for r in rows:
        count = years.setdefault(r["year"], Counter())
        count["records"] += 1
        count.update(r["topics"])
    return [{"year": y, "records": c["records"], **{t: c[t] for t in TOPICS}}
            for y, c in sorted(years.items(), key=lambda kv: (kv[0] is None, kv[0] or 0))]


def expected_flow(rows: list[dict], names: list[str] | None = None) -> dict[str, int]:
    identified = sum(len([s for s in r["searches"] if names is None or s in names])
                     for r in rows)
    flow = {"identified": identified, "duplicates": identified - len(rows),
            "unique": len(rows), "labelled": sum(1 for r in rows if r["classifier_version"])}
    return {**flow, **{t: sum(1 for r in rows if t in r["topics"]) for t in TOPICS}}


def report(cli, out: Path, *args: str) -> None:
    result = cli("report", "--output", str(out), *args)
    assert result.exit_code == 0, result.stderr
    assert (out / "index.html").is_file()


def csv_years(out: Path) -> list[dict]:
    df = pd.read_csv(out / "topics_by_year.csv")
    assert list(df.columns) == ["year", "records", *TOPICS]
    return [{**r, "year": None if pd.isna(r["year"]) else int(r["year"])}
            for r in df.to_dict("records")]


def csv_flow(out: Path) -> dict[str, int]:
    df = pd.read_csv(out / "flow.csv")
    assert list(df.columns) == ["stage", "count"]
    assert list(df["stage"]) == ["identified", "duplicates", "unique", "labelled", *TOPICS]
    return dict(zip(df["stage"], df["count"].astype(int), strict=True))


def test_every_csv_number_agrees_with_the_library(cli, library, tmp_path):
    out = tmp_path / "R"
    report(cli, out)
    rows = export_rows(cli, tmp_path)
    assert csv_years(out) == expected_years(rows)
    flow = csv_flow(out)
    assert flow == expected_flow(rows)
    with sqlite3.connect(library) as db:  # and straight from the tables
        live = "deleted_at IS NULL"
        assert flow["unique"] == db.execute(f"SELECT count(*) FROM records WHERE {live}"
                                            ).fetchone()[0] == 11
        assert flow["identified"] == db.execute(
            "SELECT count(*) FROM hits JOIN records USING (pmid) WHERE " + live).fetchone()[0]
        assert flow["duplicates"] == 2  # 601 and 90000002 are in alpha and beta
        assert flow["labelled"] == 11  # search labels what it stores, as refresh does
    assert sum(flow[t] for t in TOPICS) > 0  # the topic columns are exercised
    assert csv_years(out)[-1]["year"] is None  # the record without a year, last


def test_refresh_chart_counts_what_each_refresh_added(cli, library, tmp_path):
    out = tmp_path / "R"
    report(cli, out)
    refreshes = pd.read_csv(out / "added_per_refresh.csv")
    assert list(refreshes.columns) == ["refresh", "started", "finished", "status", "added"]
    # 10 records (one deleted since), then 610 and 611; 620 came from 'search'
    assert refreshes[["refresh", "status", "added"]].values.tolist() == \
        [[1, "complete", 8], [2, "complete", 2]]
    assert "1 more were stored by &#x27;kratomlit search&#x27;" in \
        (out / "index.html").read_text()


@pytest.mark.parametrize("saved", [["alpha"], ["beta"], ["alpha", "beta"]])
def test_saved_selects_what_export_selects(cli, library, tmp_path, saved):
    out = tmp_path / "R"
    report(cli, out, *(a for name in saved for a in ("--saved", name)))
    by_pmid = {r["pmid"]: r for name in saved
               for r in export_rows(cli, tmp_path, "--saved", name)}  # export takes one
    rows = [by_pmid[p] for p in sorted(by_pmid)]
    assert csv_years(out) == expected_years(rows)
    assert csv_flow(out) == expected_flow(rows, saved)


def test_since_selects_what_export_selects(cli, library, tmp_path):
    with sqlite3.connect(library) as db:  # as if the first refresh ran in 2024
        db.execute("UPDATE records SET first_stored = '2024-06-01T10:00:00.000+00:00' "
                   "WHERE pmid IN (SELECT pmid FROM hits WHERE search_id = 1) AND pmid < 610")
    out = tmp_path / "R"
    report(cli, out, "--since", "2025/01")
    rows = export_rows(cli, tmp_path, "--since", "2025/01")
    assert 0 < len(rows) < 11
    assert csv_years(out) == expected_years(rows)
    assert csv_flow(out) == expected_flow(rows)
    report(cli, out, "--since", "2999")
    assert csv_flow(out)["unique"] == 0 and csv_years(out) == []


def test_design_chart_counts_the_extracted_designs(cli, library, tmp_path):
    out = tmp_path / "R"
    with sqlite3.connect(library) as db:
        assert db.execute("SELECT count(*) FROM extractions").fetchone()[0] > 0  # by search
        db.execute("DELETE FROM extractions")  # as a library from before study designs
    report(cli, out)
    assert not (out / "designs_by_year.csv").exists()
    assert "No study designs are extracted" in (out / "index.html").read_text()
    designs = {600: "observational", 601: "case", 602: "case", 90000001: "rct",
               NO_YEAR: "rct", DELETED: "rct"}  # the deleted one must not count
    with sqlite3.connect(library) as db:  # known designs; 90000002 has none (not counted)
        db.executemany("INSERT INTO extractions (pmid, version, design, design_confidence, "
                       "n, data, extracted_at) VALUES (?, 'v1', ?, 0.9, 10, '{}', 'now')",
                       designs.items())
        years = dict(db.execute("SELECT pmid, pub_year FROM records"))
        live = {r[0] for r in db.execute("SELECT pmid FROM records WHERE deleted_at IS NULL")}
    report(cli, out)
    table = pd.read_csv(out / "designs_by_year.csv")
    assert list(table.columns)[0] == "year"
    got = {(None if pd.isna(r["year"]) else int(r["year"]), d): int(r[d])
           for r in table.to_dict("records") for d in table.columns[1:] if r[d]}
    want = Counter((years[p], designs[p]) for p in live if p in designs)
    assert got == dict(want)
    assert Image.open(out / "designs_by_year.png").format == "PNG"


def test_a_failed_report_leaves_the_earlier_one_untouched(cli, library, tmp_path,
                                                         monkeypatch):
    from kratomlit import report_charts

    out = tmp_path / "R"
    report(cli, out)
    before = {p.name: p.read_bytes() for p in out.iterdir()}

    def disk_full(*_args: object) -> bytes:
        raise OSError(28, "No space left on device")

    with monkeypatch.context() as patch:
        patch.setattr(report_charts, "added_per_refresh", disk_full)
        result = cli("report", "--output", str(out), "--saved", "beta")
    assert result.exit_code == 6 and "No space left" in result.stderr
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".R")) == []
    report(cli, out, "--saved", "beta")  # a good one replaces it
    assert csv_flow(out) == expected_flow(export_rows(cli, tmp_path, "--saved", "beta"),
                                          ["beta"])
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".R")) == []


def test_a_folder_that_is_not_a_report_is_refused_not_replaced(cli, library, tmp_path):
    foreign = tmp_path / "papers"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    result = cli("report", "--output", str(foreign))
    assert result.exit_code == 6 and "not a kratomlit report" in result.stderr
    assert [p.name for p in foreign.iterdir()] == ["notes.txt"]
    afile = tmp_path / "file.html"
    afile.write_text("x")
    assert cli("report", "--output", str(afile)).exit_code == 6
    empty = tmp_path / "empty"
    empty.mkdir()
    report(cli, empty)


def test_a_symlinked_report_folder_stays_a_symlink(cli, library, tmp_path):
    real = tmp_path / "site" / "kratom"
    report(cli, real)
    link = tmp_path / "report-link"
    link.symlink_to(real, target_is_directory=True)
    report(cli, link, "--saved", "alpha")
    assert link.is_symlink() and link.resolve() == real.resolve()
    assert csv_flow(real)["identified"] == csv_flow(real)["unique"]  # alpha alone


class _Refs(HTMLParser):
    """Every tag, attribute and text of a page."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: Counter[str] = Counter()
        self.refs: list[tuple[str, str, str]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags[tag] += 1
        self.refs += [(tag, k, v or "") for k, v in attrs]

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def test_the_page_escapes_record_text_and_loads_nothing_from_outside(cli, library, tmp_path):
    out = tmp_path / "R"
    report(cli, out)
    html = (out / "index.html").read_text()
    page = _Refs()
    page.feed(html)
    assert HOSTILE in "".join(page.text)  # shown as text ...
    assert page.tags["script"] == 0 and "evil.example/x.png\">" not in html  # ... not run
    assert not {"link", "iframe", "object", "embed", "base"} & set(page.tags)
    assert "url(" not in html and "@import" not in html
    for tag, attr, value in page.refs:
        if attr == "src":
            assert tag == "img" and value.startswith("data:image/png;base64,")
        elif value.startswith("https://"):
            assert tag == "a" and value.removeprefix("https://pubmed.ncbi.nlm.nih.gov/"
                                                     ).rstrip("/").isdigit()
        elif attr == "href":
            assert tag == "a" and (out / value).is_file()
        else:
            assert "://" not in value and "url(" not in value, (tag, attr, value)
    assert sum(attr == "src" for _tag, attr, _v in page.refs) == 3  # the three charts


def test_charts_are_real_png_images(cli, library, tmp_path):
    out = tmp_path / "R"
    report(cli, out)
    charts = ("records_by_year.png", "added_per_refresh.png", "designs_by_year.png")
    for name in charts:
        with Image.open(out / name) as img:
            img.verify()
        with Image.open(out / name) as img:
            assert img.format == "PNG" and img.size[0] >= 800 and img.size[1] >= 400
            assert len(img.convert("RGB").getcolors(1 << 20) or []) > 8  # drawn, not blank
    html = (out / "index.html").read_text()
    embedded = [base64.b64decode(part.split('"', 1)[0])
                for part in html.split("data:image/png;base64,")[1:]]
    assert sorted(embedded) == sorted((out / n).read_bytes() for n in charts)


def test_terminal_summary(cli, library, tmp_path):
    result = cli("report", "--saved", "alpha")
    assert result.exit_code == 0, result.stderr
    flow = expected_flow(export_rows(cli, tmp_path, "--saved", "alpha"), ["alpha"])
    text = result.stdout
    assert f"{flow['unique']} records from saved searches alpha" in text
    for stage, n in flow.items():
        assert any(stage in line and line.split()[-2] == str(n)
                   for line in text.splitlines() if "│" in line), stage
    assert "█" in text and "2025" in text


def test_bad_requests_are_usage_errors(cli, library, tmp_path):
    result = cli("report", "--saved", "nosuch")
    assert result.exit_code == 2 and "no records from a saved search named 'nosuch'" in \
        result.stderr
    assert cli("report", "--since", "yesterday").exit_code == 2
    assert not (tmp_path / "R").exists()


def test_no_library_yet(cli, tmp_path):
    result = cli("report")
    assert result.exit_code == 2 and "There is no library" in result.stderr


def test_refresh_report_rebuilds_the_report(cli, server, tmp_path, env):
    qdir = tmp_path / "queries"
    qdir.mkdir()
    (qdir / "alpha.toml").write_text('name = "alpha"\nterm = "kratom alpha"\n')
    server.state.add_docs(fixture_docs(), term="kratom alpha")
    foreign = tmp_path / "papers"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    result = cli("refresh", "--queries", str(qdir), "--report", str(foreign))
    assert result.exit_code == 6 and server.state.requests("esearch") == []  # before work
    out = tmp_path / "R"
    result = cli("refresh", "--queries", str(qdir), "--quiet", "--report", str(out))
    assert result.exit_code == 0 and result.stdout == "" and result.stderr == ""
    assert csv_flow(out)["unique"] == 4
    server.state.add_docs([synthetic_doc(700, date(2025, 1, 1))], term="kratom alpha")
    assert cli("refresh", "--queries", str(qdir), "--quiet", "--report", str(out)
               ).exit_code == 0
    assert csv_flow(out)["unique"] == 5
    assert pd.read_csv(out / "added_per_refresh.csv")["added"].tolist() == [4, 1]


CHROMIUM = shutil.which("chromium")


@pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium package is not installed")
def test_the_page_as_a_person_sees_it_in_headless_chromium(cli, library, tmp_path):
    out = tmp_path / "R"
    report(cli, out)
    url = (out / "index.html").resolve().as_uri()
    shot = tmp_path / "shot.png"
    base = [str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
            "--no-first-run", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", f"--user-data-dir={tmp_path / 'chromium'}",
            "--window-size=1200,2000"]
    subprocess.run([*base, f"--screenshot={shot}", url], check=True, capture_output=True,
                   timeout=120)
    dom = subprocess.run([*base, "--dump-dom", url], check=True, capture_output=True,
                         text=True, timeout=120).stdout
    flow = expected_flow(export_rows(cli, tmp_path))
    page = _Refs()
    page.feed(dom)
    text = " ".join(" ".join(page.text).split())
    assert f"{flow['unique']} records" in text and f"{flow['labelled']} labelled" in text
    assert f"identified {flow['identified']} " in text  # the flow table, as rendered
    assert "Kratom literature report" in text and HOSTILE in text
    with Image.open(shot) as img:
        pixels = img.convert("L").resize((300, 500))
        histogram = pixels.histogram()
    assert len([n for n in histogram if n]) > 20  # many shades: text and charts drawn
    assert sum(histogram[:200]) > 0.02 * 300 * 500  # not a white page
