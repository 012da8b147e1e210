"""``kratomlit export`` against the writers it had before the speed-up
(tests/reference_export_formats.py): the same library must give the same file in every
format, byte for byte (XLSX: every part but the creation time; Parquet: the same table,
schema and metadata), over records chosen to hit every rule a writer has: formula-like
cells, line breaks JSON readers split on, astral and control characters, cells past
Excel's limit, missing fields, labels with evidence, extractions with doses."""

from __future__ import annotations

import os
import zipfile
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from kratomlit import export as export_module
from kratomlit import export_formats, export_parallel
from kratomlit.models import (
    Dose,
    Evidence,
    ExportOptions,
    Extraction,
    Labels,
    Record,
)
from kratomlit.store import Library
from tests.reference_export_formats import reference_export

FORMATS = ("csv", "tsv", "xlsx", "ris", "bibtex", "jsonl", "parquet")
LONG = ("Kratom μ-opioid 𝛍 " * 4000) + "the end."  # ~72,000 characters, astral letters too
TITLES = [
    '=HYPERLINK("http://example.invalid","click") kratom', 'He said "no", then\nleft: a, b',
    "-opioid tolerance", "+5 mg/kg", "@SUM(A1:A2)", "\tTabbed", "'Quoted' {unbalanced brace",
    "Μ-οπιοειδής υποδοχέας", "กระท่อม: 泰国克拉托姆 — ミトラギニン «kratom» 😀", "\rCR first",
    "line\u2028separator\u0085next\u2029para", "control \x01\x0b\x1f chars", "  spaces  ",
    "123", "", "semi; colon, comma\ttab", "back\\slash and \"quotes\"", "}closing first{",
    "_x0041_ looks escaped", "ends with newline\n", "<i>Mitragyna</i> & <b>co</b> > 1",
    "\ufffe\uffff non-characters", "\u00a0no-break spaces\u3000",
]
SCORES = [0.1 + 0.2, 1e-05, 0.0, 1.0, 1 / 3, 0.5, 2.5e-10, 0.999999]


def _authors(i: int) -> list[Any]:
    people = [
        {"last": "Ødegård", "fore": "Kari", "initials": "K", "suffix": "", "collective": "",
         "affiliations": ["Oslo, Norway", "=Lab; 2"], "valid": True},
        {"last": "", "fore": "", "initials": "", "suffix": "", "collective": "Research Group",
         "affiliations": [], "valid": True},
        {"last": "Smith", "fore": "John", "initials": "J", "suffix": "Jr", "collective": "",
         "affiliations": ["Oslo, Norway"], "valid": i % 3 != 0},
        {"last": "Van der Berg", "fore": "", "initials": "", "suffix": "", "collective": "",
         "affiliations": [], "valid": True},
    ]
    return people[: i % 5]


def _record(i: int) -> Record:
    pmid = 1000 + i
    if i % 11 == 5:
        return Record(pmid=pmid)  # every field missing
    title = TITLES[i % len(TITLES)]
    abstract = (LONG if i % 13 == 1 else "x" * 32767 if i % 13 == 2 else
                f"BACKGROUND: text of {pmid}, \"quoted\".\nRESULTS: =1+2; {title}")
    return Record(
        pmid=pmid, title=title, abstract=abstract, authors=_authors(i),
        journal=["J Test", "", "Journal, of \"Tests\""][i % 3], journal_iso="J Test",
        volume=str(i % 4 or ""), issue=["2", "", "Suppl 1"][i % 3],
        pages=["10-19", "e123", "", "5-"][i % 4], pub_year=None if i % 7 == 3 else 1990 + i,
        pub_date=["2010-05", "1998 Dec-1999 Jan", "", "2011 Spring", "2012-01-02"][i % 5],
        doi="" if i % 4 == 0 else f"10.5555/h.{pmid}", pmcid="" if i % 2 else f"PMC{pmid}",
        mesh=[{"descriptor": "Mitragyna", "ui": "D1", "major": i % 2 == 0,
               "qualifiers": [{"name": "drug effects", "ui": "Q1", "major": i % 3 == 0}]},
              {"descriptor": "Opioid-Related Disorders", "ui": "D2", "major": False,
               "qualifiers": []}][: i % 3],
        keywords=["kratom", "=cmd|' /C calc'!A0", "ü"][: i % 4],
        publication_types=["Journal Article"] + (["Retracted Publication"] if i % 17 == 4
                                                 else []),
        languages=[["eng"], [], ["eng", "fre"]][i % 3],
        corrections=[{"type": "RetractionIn", "source": "J Test 2020;1:2", "pmid": "99"},
                     {"type": "ErratumIn", "source": "J Test; 3", "pmid": ""}][: i % 3],
        raw_xml=f"<x>{pmid}</x>")


def _labels(i: int) -> Labels:
    topics = [t for n, t in enumerate(("mechanism", "withdrawal", "safety", "dosing"))
              if (i >> n) & 1]
    scores = {t: SCORES[(i + n) % len(SCORES)]
              for n, t in enumerate(("mechanism", "withdrawal", "safety", "dosing"))
              if (i + n) % 5}
    evidence = {t: [Evidence("hepato=toxicity", f"Sentence\n{i}; “quoted”.", "abstract"),
                    Evidence("g/day", "Users took 5 g/day.", "title")]
                for t in ("safety", "dosing", "mechanism")[: i % 4]}
    return Labels(f"1.{i % 3}+test", topics, scores, evidence)


def _extraction(i: int) -> Extraction:
    doses = [Dose("5 g/day", 5.0, 5.0, "g", "day", "kratom", "They took 5 g/day."),
             Dose("0.5-1.5 mg/kg", 0.5, 1.5, "mg/kg", None, None, "=Dosed\nat 0.5-1.5."),
             Dose("5 g/day", 5.0, 5.0, "g", "day", "kratom", "Again 5 g/day."),
             Dose("1e-7 M", 1e-07, 1e-07, "M", None, "mitragynine", "1e-7 M in vitro."),
             Dose("huge", 1e21, 2.5e22, "mg", None, None, "")][: i % 6]
    g_day = [(1.5, 3.0), (0.25, 0.25), None, (10.0, 1e-06)][i % 4]
    return Extraction(["rct", "case", "animal", "other"][i % 4], 0.1 + 0.2,
                      [Evidence("randomised", "A randomised trial.", "abstract")],
                      None if i % 3 == 0 else i * 1000, doses, g_day)


@pytest.fixture(scope="module")
def library(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("parity") / "library.db"
    records = [_record(i) for i in range(70)]
    with Library(path) as lib:
        named = lib.runs.get_search("kratom AND oud", name="kratom-oud")
        plain = lib.runs.get_search("mitragynine")
        again = lib.runs.get_search("kratom[tiab]", name="kratom-oud")  # a name run as 2 terms
        lib.records.save_batch(named.id, records[:50])
        lib.records.save_batch(plain.id, records[30:])
        lib.records.save_batch(again.id, records[40:45])
        lib.labels.save([(r.pmid, _labels(i)) for i, r in enumerate(records) if i % 4])
        lib.extractions.save("ex-1", [(r.pmid, _extraction(i))
                                      for i, r in enumerate(records) if i % 3])
    return path


def _export(library: Path, out: Path, options: ExportOptions,
            monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Export with kratomlit; returns the 'about' it used (the reference writes the same)."""
    seen: dict[str, str] = {}
    real_about = export_module._about

    def about(*args: Any) -> dict[str, str]:
        seen.update(real_about(*args))
        return seen

    monkeypatch.setattr(export_module, "_about", about)
    with Library(library) as lib:
        export_module.export_library(lib, out, options)
    return seen


def _xlsx_parts(path: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as z:  # docProps/core.xml holds the creation time
        return {n: z.read(n) for n in z.namelist() if n != "docProps/core.xml"}


def _assert_same(fmt: str, new: Path, ref: Path) -> None:
    if fmt == "xlsx":
        got, want = _xlsx_parts(new), _xlsx_parts(ref)
        assert sorted(got) == sorted(want)
        for name in want:
            assert got[name] == want[name], name
    elif fmt == "parquet":
        got_t, want_t = pq.read_table(new), pq.read_table(ref)
        assert got_t.schema.equals(want_t.schema, check_metadata=True)
        assert got_t.equals(want_t)
        assert pq.ParquetFile(new).num_row_groups == pq.ParquetFile(ref).num_row_groups
    else:
        assert new.read_bytes() == ref.read_bytes()


CASES = [(fmt, {}) for fmt in FORMATS] + [
    ("csv", {"excel": True}), ("tsv", {"excel": True}),
    ("csv", {"columns": ("title",)}), ("tsv", {"columns": ("issue",)}),  # one-field rows
    ("csv", {"columns": ("pmid", "evidence", "doses", "kratom_g_per_day", "score_safety",
                         "retracted", "n", "title")}),
    ("xlsx", {"columns": ("pmid", "evidence", "abstract", "doses", "score_dosing")}),
    ("jsonl", {"columns": ("abstract", "pmid", "evidence", "kratom_g_per_day")}),
    ("parquet", {"columns": ("pmid", "evidence", "doses", "kratom_g_per_day", "year")}),
]


@pytest.mark.parametrize("helper", [True, False])
@pytest.mark.parametrize("chunk", [2000, 7])
@pytest.mark.parametrize(("fmt", "extra"), CASES)
def test_every_format_matches_the_reference(library: Path, tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch, fmt: str,
                                            extra: dict[str, Any], chunk: int,
                                            helper: bool) -> None:
    """With 7-record chunks (10 of them) the formats that can use the helper process do
    (export_parallel), unless ``helper`` is off; with 2,000 there is one chunk."""
    monkeypatch.setattr(export_module, "CHUNK", chunk)
    if not helper:
        monkeypatch.setattr(export_parallel, "HELPER_MIN_CHUNKS", 10**9)
    options = ExportOptions(fmt, **extra)
    new, ref = tmp_path / f"new.{fmt}", tmp_path / f"ref.{fmt}"
    about = _export(library, new, options, monkeypatch)
    with Library(library) as lib:
        count = reference_export(lib.db, ref, options, about, chunk)
    assert count == 70
    _assert_same(fmt, new, ref)


def test_the_comparison_can_fail(library: Path, tmp_path: Path,
                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """A one-character change in one record is caught (the test is not comparing a file
    with itself)."""
    new, ref = tmp_path / "new.csv", tmp_path / "ref.csv"
    about = _export(library, new, ExportOptions("csv"), monkeypatch)
    with Library(library) as lib:
        reference_export(lib.db, ref, ExportOptions("csv"), about)
        lib.db.execute("UPDATE records SET data = replace(data, 'J Test', 'J Tost') "
                       "WHERE pmid = 1001")
    _export(library, new, ExportOptions("csv"), monkeypatch)
    with pytest.raises(AssertionError):
        _assert_same("csv", new, ref)
    with Library(library) as lib:
        lib.db.execute("UPDATE records SET data = replace(data, 'J Tost', 'J Test') "
                       "WHERE pmid = 1001")


@pytest.mark.parametrize("fmt", ["bibtex", "parquet", "ris", "jsonl"])
def test_chunk_boundaries_match_the_old_2000_record_chunks(tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch,
                                                           fmt: str) -> None:
    """Files depend on the chunk size (BibTeX has no blank line between chunks, Parquet one
    row group per chunk): the default chunk must give the old files past 2,000 records."""
    path = tmp_path / "library.db"
    with Library(path) as lib:
        search = lib.runs.get_search("kratom")
        lib.records.save_batch(search.id, [Record(pmid=p, title=f"T{p}", authors=_authors(4))
                                           for p in range(1, 2051)])
    options = ExportOptions(fmt)
    new, ref = tmp_path / f"new.{fmt}", tmp_path / f"ref.{fmt}"
    about = _export(path, new, options, monkeypatch)
    with Library(path) as lib:
        assert reference_export(lib.db, ref, options, about, 2000) == 2050
    _assert_same(fmt, new, ref)


def _export_result(library: Path, out: Path, options: ExportOptions
                   ) -> export_module.ExportResult:
    with Library(library) as lib:
        return export_module.export_library(lib, out, options)


@pytest.mark.parametrize(("fmt", "extra"), [
    ("csv", {"topics": ("safety",)}), ("bibtex", {"min_score": 0.3}),
    ("jsonl", {"topics": ("dosing",), "min_score": 0.5}),
    ("parquet", {"topics": ("withdrawal",)}), ("ris", {"designs": ("rct", "case")}),
])
def test_the_helper_keeps_filtered_exports_the_same(library: Path, tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch,
                                                    fmt: str, extra: dict[str, Any]) -> None:
    """Topic and score filters drop records from the helper's chunks too: the same file,
    count and warnings (the unlabelled records it skipped) as one process gives."""
    monkeypatch.setattr(export_module, "CHUNK", 7)
    options = ExportOptions(fmt, **extra)
    shared = _export_result(library, tmp_path / f"shared.{fmt}", options)
    monkeypatch.setattr(export_parallel, "HELPER_MIN_CHUNKS", 10**9)
    alone = _export_result(library, tmp_path / f"alone.{fmt}", options)
    assert (shared.count, shared.warnings) == (alone.count, alone.warnings)
    assert 0 < shared.count < 70
    if fmt == "parquet":  # the metadata holds the export time
        assert pq.read_table(shared.path).equals(pq.read_table(alone.path))
        assert (pq.ParquetFile(shared.path).num_row_groups
                == pq.ParquetFile(alone.path).num_row_groups)
    else:
        assert shared.path.read_bytes() == alone.path.read_bytes()


def test_the_helper_is_used_for_large_exports(library: Path, tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(export_module, "CHUNK", 7)
    used: list[int] = []
    real = export_parallel.shared

    def spy(*args: Any) -> Any:
        used.append(1)
        return real(*args)

    monkeypatch.setattr(export_parallel, "shared", spy)
    assert _export_result(library, tmp_path / "a.csv", ExportOptions("csv")).count == 70
    _export_result(library, tmp_path / "a.xlsx", ExportOptions("xlsx"))  # never shared
    assert used == [1]


def test_without_a_helper_process_the_export_is_done_alone(
        library: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A helper that cannot start (a process limit) costs only the second core."""
    monkeypatch.setattr(export_module, "CHUNK", 7)
    alone = _export_result(library, tmp_path / "alone.csv", ExportOptions("csv"))

    def refused(*args: Any, **kwargs: Any) -> Any:
        raise BlockingIOError(11, "Resource temporarily unavailable")

    monkeypatch.setattr(export_parallel.subprocess, "Popen", refused)
    refused_out = _export_result(library, tmp_path / "refused.csv", ExportOptions("csv"))
    assert refused_out.count == 70
    assert refused_out.path.read_bytes() == alone.path.read_bytes()


def _damaged_copy(library: Path, tmp_path: Path) -> Path:
    """The parity library with record 1010's JSON cut short: it is in the second
    7-record chunk, one the helper prepares when it runs."""
    copy = tmp_path / "damaged.db"
    with Library(library) as lib:
        lib.db.execute("VACUUM INTO ?", (str(copy),))
    with Library(copy) as lib:
        lib.db.execute("UPDATE records SET data = '{\"pmid\": 10' WHERE pmid = 1010")
    return copy


@pytest.mark.parametrize("helper", [True, False])
def test_an_error_in_the_helper_is_raised_and_leaves_no_file(
        library: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        helper: bool) -> None:
    monkeypatch.setattr(export_module, "CHUNK", 7)
    if not helper:
        monkeypatch.setattr(export_parallel, "HELPER_MIN_CHUNKS", 10**9)
    damaged = _damaged_copy(library, tmp_path)
    out = tmp_path / "out" / "records.csv"
    out.parent.mkdir()
    with pytest.raises(ValueError, match="line 1 column"):
        _export_result(damaged, out, ExportOptions("csv"))
    assert list(out.parent.iterdir()) == []
    assert not _helpers_alive()


def test_an_interrupted_export_stops_the_helper(library: Path, tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """Ctrl-C while the helper's first chunk is written: no file, no helper left."""
    monkeypatch.setattr(export_module, "CHUNK", 7)

    def interrupted(self: Any, prepared: Any) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(export_formats.TextWriter, "write_prepared", interrupted)
    out = tmp_path / "out" / "records.jsonl"
    out.parent.mkdir()
    with pytest.raises(KeyboardInterrupt):
        _export_result(library, out, ExportOptions("jsonl"))
    assert list(out.parent.iterdir()) == []
    assert not _helpers_alive()


def _helpers_alive() -> list[str]:
    """Command lines of this process's children that are export helpers and not ended."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            state, parent = (entry / "stat").read_text().rsplit(")", 1)[1].split()[:2]
            if int(parent) == os.getpid() and state != "Z":
                found.append((entry / "cmdline").read_text())
        except (OSError, ValueError):
            continue
    return [c for c in found if "export_parallel" in c]
