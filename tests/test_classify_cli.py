"""`kratomlit classify` and `eval` through the real CLI: library labels, files, gold sets."""

from __future__ import annotations

import json
import os
import sqlite3
from pathlib import Path

import pandas as pd

ITEMS = [
    {"pmid": "a1", "title": "Mitragynine binding at the mu-opioid receptor",
     "abstract": "We measured the binding affinity of mitragynine at cloned mu-opioid receptors "
                 "and found partial agonist activity with G protein signalling.",
     "labels": ["mechanism"]},
    {"pmid": "a2", "title": "Kratom use to self-treat opioid withdrawal",
     "abstract": "Survey respondents reported using kratom to manage opioid withdrawal "
                 "symptoms and cravings and to reduce their use of prescription opioids.",
     "labels": ["withdrawal"]},
    {"pmid": "a3", "title": "A rainforest tree",
     "abstract": "We describe the leaf morphology of a tropical tree.", "labels": []},
]


def _db() -> sqlite3.Connection:
    return sqlite3.connect(Path(os.environ["KRATOMLIT_HOME"]) / "library.db")


def test_classify_library_stores_versioned_labels_and_exports_them(cli, kratom_server, tmp_path):
    assert cli("search", "kratom", "--no-classify").exit_code == 0
    first = json.loads(cli("classify", "--json").stdout)
    assert first["labelled"] == 4 and first["version"]
    assert json.loads(cli("classify", "--json").stdout)["labelled"] == 0
    assert json.loads(cli("classify", "--all", "--json").stdout)["labelled"] == 4
    with _db() as db:
        db.execute("UPDATE labels SET version = 'old' WHERE pmid = 90000001")
    assert json.loads(cli("classify", "--json").stdout)["labelled"] == 1
    out = tmp_path / "k.csv"
    assert cli("export", "-o", str(out)).exit_code == 0
    df = pd.read_csv(out).set_index("pmid")
    assert "mechanism" in df.loc[90000001, "topics"]
    assert 0 <= df.loc[90000001, "score_mechanism"] <= 1
    assert (df["classifier_version"] == first["version"]).all()
    evidence = json.loads(_db().execute(
        "SELECT evidence FROM labels WHERE pmid = 90000001").fetchone()[0])
    assert evidence["mechanism"] and {"phrase", "sentence"} <= set(evidence["mechanism"][0])


def test_classify_file_keeps_order(cli, tmp_path):
    src, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    src.write_text("".join(json.dumps(i) + "\n" for i in ITEMS))
    result = cli("classify", "--input", str(src), "--output", str(out))
    assert result.exit_code == 0, result.stderr
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert [x["pmid"] for x in lines] == ["a1", "a2", "a3"]
    assert lines[0]["topics"] == ["mechanism"] and lines[2]["topics"] == []
    assert set(lines[1]["scores"]) == {"mechanism", "withdrawal", "safety", "dosing"}


def test_classify_file_bad_line_names_it_and_writes_nothing(cli, tmp_path):
    src, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    src.write_text(json.dumps(ITEMS[0]) + "\n{not json\n")
    result = cli("classify", "--input", str(src), "--output", str(out))
    assert result.exit_code == 7 and "line 2" in result.stderr
    assert not out.exists() and list(tmp_path.iterdir()) == [src]


def test_classify_needs_both_file_options(cli, tmp_path):
    assert cli("classify", "--input", str(tmp_path / "x.jsonl")).exit_code == 2


def test_eval_reports_numbers_and_errors(cli, tmp_path):
    gold = tmp_path / "gold.jsonl"
    gold.write_text("".join(json.dumps(i) + "\n" for i in ITEMS))
    report = json.loads(cli("eval", "--gold", str(gold), "--json").stdout)
    assert report["n"] == 3 and set(report["per_topic"]) == {"mechanism", "withdrawal",
                                                              "safety", "dosing"}
    text = cli("eval", "--gold", str(gold))
    assert text.exit_code == 0 and "macro-F1" in text.stdout and "Misses" in text.stdout


def test_eval_without_labels_is_an_input_error(cli, tmp_path):
    gold = tmp_path / "gold.jsonl"
    gold.write_text(json.dumps({"pmid": "x", "title": "t", "abstract": "a"}) + "\n")
    result = cli("eval", "--gold", str(gold))
    assert result.exit_code == 7 and "line 1" in result.stderr and "labels" in result.stderr


def test_evidence_in_the_first_abstract_sentence_quotes_that_sentence():
    from kratomlit.classify import default_classifier

    result = default_classifier().classify(
        "Kratom liver injury", "We describe a hepatotoxic case. Another sentence.")
    shown = {(e.source, e.sentence) for e in result.evidence["safety"]}
    assert ("abstract", "We describe a hepatotoxic case.") in shown
    assert ("abstract", "Kratom liver injury") not in shown


def test_library_and_file_classification_agree_with_mesh_qualifiers(cli, kratom_server,
                                                                      tmp_path):
    from kratomlit.models import mesh_heading

    assert cli("search", "kratom", "--no-classify").exit_code == 0
    assert cli("classify").exit_code == 0
    rec = json.loads(_db().execute("SELECT data FROM records WHERE pmid = 90000003"
                                   ).fetchone()[0])
    src, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    src.write_text(json.dumps({"pmid": 90000003, "title": rec["title"],
                               "abstract": rec["abstract"], "keywords": rec["keywords"],
                               "publication_types": rec["publication_types"],
                               "mesh": [mesh_heading(m) for m in rec["mesh"]]}) + "\n")
    assert cli("classify", "--input", str(src), "--output", str(out)).exit_code == 0
    from_file = json.loads(out.read_text())
    stored = json.loads(_db().execute("SELECT scores FROM labels WHERE pmid = 90000003"
                                      ).fetchone()[0])
    assert stored == from_file["scores"]
    evidence = json.loads(_db().execute("SELECT evidence FROM labels WHERE pmid = 90000003"
                                        ).fetchone()[0])
    assert {"phrase": "poisoning", "sentence": "Mitragyna/poisoning*",
            "source": "mesh"} in evidence["safety"]  # the qualifier counted


def test_a_revised_record_is_labelled_again(cli, kratom_server):
    from kratomlit.models import Record
    from kratomlit.store import Library

    cli("search", "kratom", "--no-classify")
    cli("classify")
    with Library(Path(os.environ["KRATOMLIT_HOME"]) / "library.db") as lib:
        search = lib.runs.get_search("kratom")
        lib.records.save_batch(search.id, [Record(
            pmid=90000002, title="Fatal kratom overdose deaths",
            abstract="Poisoning deaths were reported.", raw_xml="<revised/>")])
    summary = json.loads(cli("classify", "--json").stdout)
    assert summary["labelled"] == 1


def test_file_problems_have_their_own_exit_codes(cli, tmp_path):
    src = tmp_path / "in.jsonl"
    src.write_bytes(b'\xef\xbb\xbf{"pmid": "1", "title": "kratom"}\n')  # BOM is fine
    assert cli("classify", "--input", str(src), "--output", str(tmp_path / "o.jsonl")
               ).exit_code == 0
    src.write_bytes(b'{"pmid": "1", "title": "a"}\n\xff\n')
    bad = cli("classify", "--input", str(src), "--output", str(tmp_path / "o2.jsonl"))
    assert bad.exit_code == 7 and "line 2: not valid UTF-8" in bad.stderr
    assert cli("eval", "--gold", str(src)).exit_code == 7
    nowhere = cli("classify", "--input", str(src), "--output", str(tmp_path / "no" / "o.jsonl"))
    assert nowhere.exit_code == 6
    assert cli("classify", "--all", "--input", str(src), "--output", "x").exit_code == 2


def test_classify_without_a_library_says_so(cli):
    result = cli("classify")
    assert result.exit_code == 2 and "kratomlit search" in result.stderr


def test_json_summary_is_one_line_when_piped(cli, kratom_server):
    out = cli("search", "kratom", "--json").stdout
    assert len(out.strip().splitlines()) == 1 and json.loads(out)["mindate"] is None


def test_a_one_sentence_abstract_is_content_not_background():
    from kratomlit.classify import default_classifier

    result = default_classifier().classify(
        "Kratom alkaloid study", "Mitragynine acted as a partial agonist at the mu-opioid "
        "receptor with G protein bias and no beta-arrestin recruitment.")
    assert result.topics == ["mechanism"]
    assert any(e.source == "abstract" for e in result.evidence["mechanism"])


def test_train_writes_a_model_that_classify_and_eval_use(cli, shared, tmp_path):
    dev = shared / "data" / "kratom_dev.jsonl"
    model = tmp_path / "model.json"
    trained = cli("train", "--gold", str(dev), "--output", str(model), "--cv", "0", "--json")
    assert trained.exit_code == 0, trained.stderr
    summary = json.loads(trained.stdout)
    from kratomlit.classify import default_classifier

    assert summary["version"] == default_classifier().version  # the shipped model, again
    assert summary["trained_on"] == 262 and "cv_macro_f1" not in summary
    src, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    src.write_text("".join(json.dumps(i) + "\n" for i in ITEMS))
    assert cli("classify", "--input", str(src), "--output", str(out), "--model",
               str(model)).exit_code == 0
    assert json.loads(out.read_text().splitlines()[0])["topics"] == ["mechanism"]
    report = cli("eval", "--gold", str(src), "--model", str(model))
    assert report.exit_code == 0 and "Misses" in report.stdout


def test_model_and_cv_problems_are_messages(cli, tmp_path):
    gold = tmp_path / "gold.jsonl"
    gold.write_text("".join(json.dumps(i) + "\n" for i in ITEMS))
    broken = tmp_path / "broken.json"
    broken.write_text("{")
    bad_model = cli("eval", "--gold", str(gold), "--model", str(broken))
    assert bad_model.exit_code == 2 and "not valid JSON" in bad_model.stderr
    assert cli("classify", "--model", str(tmp_path / "none.json")).exit_code == 2
    both = cli("eval", "--gold", str(gold), "--cv", "3", "--model", str(broken))
    assert both.exit_code == 2 and "--model" in both.stderr
    too_few = cli("eval", "--gold", str(gold), "--cv", "3")
    assert too_few.exit_code == 7 and "at least 10" in too_few.stderr
    nowhere = cli("train", "--gold", str(gold), "--output", str(tmp_path / "no" / "m.json"))
    assert nowhere.exit_code == 6


def test_eval_cv_prints_mean_and_sd(cli, shared, tmp_path):
    lines = (shared / "data" / "kratom_dev.jsonl").read_text(encoding="utf-8").splitlines()
    gold = tmp_path / "gold.jsonl"
    gold.write_text("\n".join(lines[:120]) + "\n", encoding="utf-8")
    result = cli("eval", "--gold", str(gold), "--cv", "2", "--repeats", "1")
    assert result.exit_code == 0, result.stderr
    assert "1 x stratified 2-fold" in result.stdout and "macro-F1" in result.stdout
    assert "reliability" in result.stdout and "±" in result.stdout
