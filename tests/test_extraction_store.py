"""Study design, n and doses in the library: made by search and classify, versioned,
made again when PubMed revises a record (the real CLI against the local server)."""

from __future__ import annotations

import json
import os
import sqlite3
from pathlib import Path

from kratomlit.extract import extractor_version
from kratomlit.models import DESIGNS, Record
from kratomlit.store import Library


def _rows(env) -> list[tuple]:
    with sqlite3.connect(Path(env["KRATOMLIT_HOME"]) / "library.db") as db:
        return db.execute("SELECT pmid, version, design, n, data FROM extractions "
                          "ORDER BY pmid").fetchall()


def test_search_stores_a_design_for_every_record(cli, kratom_server, env):
    assert cli("search", "kratom").exit_code == 0
    rows = _rows(env)
    assert len(rows) == 4
    for _pmid, version, design, n, data in rows:
        assert version == extractor_version() and design in DESIGNS
        stored = json.loads(data)
        assert stored["design"] == design and stored["n"] == n
        assert stored["design_evidence"] or stored["design"] == "other"


def test_classify_extracts_what_search_left_and_all_redoes_it(cli, kratom_server, env):
    assert cli("search", "kratom", "--no-classify").exit_code == 0
    assert _rows(env) == []
    first = json.loads(cli("classify", "--json").stdout)
    assert first["extracted"] == 4 and sum(first["designs"].values()) == 4
    again = json.loads(cli("classify", "--json").stdout)
    assert again["extracted"] == 0  # current already
    redo = json.loads(cli("classify", "--all", "--json").stdout)
    assert redo["extracted"] == 4


def test_a_revised_record_is_extracted_again(cli, kratom_server, env):
    assert cli("search", "kratom").exit_code == 0
    with Library(Path(os.environ["KRATOMLIT_HOME"]) / "library.db") as lib:
        search = lib.runs.get_search("kratom")
        lib.records.save_batch(search.id, [Record(
            pmid=90000002, title="A randomized controlled trial of kratom in 48 adults",
            abstract="We randomized 48 adults to 2 g kratom leaf powder per day or placebo.",
            raw_xml="<revised/>")])
        assert lib.extractions.get(90000002) is None  # the old one described the old text
    assert json.loads(cli("classify", "--json").stdout)["extracted"] == 1
    with Library(Path(os.environ["KRATOMLIT_HOME"]) / "library.db") as lib:
        found = lib.extractions.get(90000002)
    assert found is not None and found.design == "rct" and found.n == 48
    assert [(d.low, d.high, d.unit, d.per) for d in found.doses] == [(2.0, 2.0, "g", "day")]


def test_classify_input_lines_gain_design_n_and_doses(cli, env, tmp_path):
    src = tmp_path / "in.jsonl"
    src.write_text(json.dumps({
        "pmid": 7, "title": "Kratom use in 120 adults: a cross-sectional survey",
        "abstract": "We surveyed 120 adults who used kratom. Participants reported taking "
                    "3 g kratom powder three times a day."}) + "\n")
    out = tmp_path / "out.jsonl"
    assert cli("classify", "--input", str(src), "--output", str(out)).exit_code == 0
    line = json.loads(out.read_text())
    assert line["design"] == "observational" and line["n"] == 120
    assert line["design_evidence"] and line["design_evidence"][0]["sentence"]
    assert [(d["low"], d["unit"], d["per"]) for d in line["doses"]] == [(3.0, "g", None)]
    assert {"topics", "scores", "evidence", "kratom_g_per_day"} <= set(line)


def test_eval_scores_design_and_n_when_the_gold_has_them(cli, env, tmp_path):
    gold = tmp_path / "gold.jsonl"
    lines = [{"pmid": 1, "title": "A case of kratom withdrawal in a 30-year-old man",
              "abstract": "We report a case of withdrawal after daily kratom use.",
              "labels": ["withdrawal"], "design": "case", "n": 1},
             {"pmid": 2, "title": "Mitragynine in rats", "abstract":
              "Rats received mitragynine 10 mg/kg i.p.; locomotion was measured.",
              "labels": ["mechanism"], "design": "animal", "n": None}]
    gold.write_text("".join(json.dumps(x) + "\n" for x in lines))
    result = json.loads(cli("eval", "--gold", str(gold), "--json").stdout)
    assert result["extraction"]["records"] == 2
    assert result["extraction"]["design_accuracy"] == 1.0
    assert result["extraction"]["n_exact"] == 1.0 and result["extraction"]["n_spurious"] == 0.0


def test_exports_carry_design_n_and_doses_and_filter_by_design(cli, kratom_server, env,
                                                              tmp_path):
    import csv

    import pyarrow.parquet as pq

    assert cli("search", "kratom").exit_code == 0
    with Library(Path(os.environ["KRATOMLIT_HOME"]) / "library.db") as lib:
        search = lib.runs.get_search("kratom")
        lib.records.save_batch(search.id, [Record(
            pmid=90000002, title="A randomized controlled trial of kratom in 48 adults",
            abstract="We randomized 48 adults to 1-5 g kratom leaf powder per day or placebo.",
            raw_xml="<revised/>")])
    assert cli("classify").exit_code == 0
    rows = [json.loads(x) for x in cli("export", "-f", "jsonl", "-o", "-").stdout.splitlines()]
    trial = next(r for r in rows if r["pmid"] == 90000002)
    assert trial["design"] == "rct" and trial["n"] == 48
    assert trial["doses"][0]["low"] == 1.0 and trial["doses"][0]["high"] == 5.0
    assert trial["kratom_g_per_day"] == [1.0, 5.0] and trial["extractor_version"]
    assert all(r["design"] in DESIGNS for r in rows)
    flat = list(csv.DictReader(cli("export", "-f", "csv", "-o", "-").stdout.splitlines()))
    cell = next(r for r in flat if r["pmid"] == "90000002")
    assert cell["doses"] == trial["doses"][0]["text"] and cell["kratom_g_per_day"] == "1-5"
    out = tmp_path / "k.parquet"
    assert cli("export", "-o", str(out)).exit_code == 0
    table = pq.read_table(out).to_pylist()
    assert next(r for r in table if r["pmid"] == 90000002)["doses"][0]["unit"] == "g"
    only = cli("export", "-f", "jsonl", "-o", "-", "--design", "rct")
    assert [json.loads(x)["pmid"] for x in only.stdout.splitlines()] == [90000002]
    wrong = cli("export", "-f", "csv", "-o", "-", "--design", "trial")
    assert wrong.exit_code == 2 and "Unknown --design trial" in wrong.stderr
