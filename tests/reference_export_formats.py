"""The export row building and format writers as they were before the export speed-up
(issue 15 item 6), kept verbatim as the reference ``tests/test_export_parity.py`` compares
``kratomlit export`` against: every format must come out the same, byte for byte (XLSX and
Parquet: cell for cell). Writers: a copy of ``kratomlit/export_formats.py``; rows: a copy of
``models.export_row`` and the library reading of ``export.read_chunks``.
"""

from __future__ import annotations

import csv
import io
import json
import re
import sqlite3
import sys
from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

import pyarrow as pa
import pyarrow.parquet as pq
import rispy
import xlsxwriter
from bibtexparser.bibdatabase import BibDatabase
from bibtexparser.bwriter import BibTexWriter
from xlsxwriter.exceptions import FileCreateError

from kratomlit.cells import EXCEL_CELL_MAX, escape_cell, excel_len, excel_parts, json_line
from kratomlit.errors import ExportError
from kratomlit.models import (
    COLUMNS,
    SEP,
    TOPICS,
    Evidence,
    ExportOptions,
    Extraction,
    Labels,
    LibraryRecord,
    Record,
    correction_text,
)

XLSX_MAX_ROWS = 1_048_576
CONTINUED = "continued"  # XLSX only: which cells of a row go on in the 'overflow' sheet
Row = Mapping[str, Any]


def _flat(value: Any, col: str = "") -> Any:
    """One cell: a list of text joined with '; ', doses as their texts, a [low, high]
    range as 'low-high', a list of objects (``evidence``, only when --columns asks for
    it) as JSON text."""
    kind = COLUMNS[col].kind if col in COLUMNS else ""
    if kind == "doses":
        return SEP.join(dict.fromkeys(d["text"] for d in value))
    if kind == "range":
        return "" if value is None else f"{value[0]:g}-{value[1]:g}"
    if isinstance(value, list):
        if value and not isinstance(value[0], str):
            return json.dumps(value, ensure_ascii=False)
        return SEP.join(value)
    return value


EVIDENCE_STRUCT = pa.struct([("topic", pa.string()), ("assigned", pa.bool_()),
                             ("phrase", pa.string()), ("sentence", pa.string()),
                             ("source", pa.string())])
DOSE_STRUCT = pa.struct([("text", pa.string()), ("low", pa.float64()), ("high", pa.float64()),
                         ("unit", pa.string()), ("per", pa.string()),
                         ("substance", pa.string()), ("sentence", pa.string())])


class Writer(ABC):
    """Base: ``write`` each chunk, ``finish`` with the record count, then ``close``."""

    def __init__(self, path: Path, options: ExportOptions, about: Mapping[str, str]):
        self.path, self.options, self.about = path, options, about
        self.columns = list(options.columns)
        self.warnings: list[str] = []

    @abstractmethod
    def write(self, rows: Sequence[Row]) -> None:
        """Append one chunk of rows to the file."""

    def finish(self, count: int) -> None:  # noqa: B027 - an optional hook, no-op by default
        """Called once after the last chunk (not on failure)."""

    def close(self) -> None:  # noqa: B027 - an optional hook, no-op by default
        """Release files; called on success and failure."""


STDOUT = Path("-")  # the path that means "standard output" (export -o -)


class TextWriter(Writer):
    """A writer that owns one text file handle, or writes to stdout for ``STDOUT``
    (UTF-8 and untranslated line endings either way)."""

    encoding = "utf-8"

    def __init__(self, path: Path, options: ExportOptions, about: Mapping[str, str]):
        super().__init__(path, options, about)
        self.fh: IO[str]
        if path == STDOUT:
            sys.stdout.flush()
            self.fh = io.TextIOWrapper(sys.stdout.buffer, encoding=self.encoding, newline="")
        else:
            self.fh = path.open("w", encoding=self.encoding, newline="")

    def close(self) -> None:
        if self.path == STDOUT and isinstance(self.fh, io.TextIOWrapper):
            self.fh.flush()
            self.fh.detach()  # leave stdout itself open
        else:
            self.fh.close()


class CsvWriter(TextWriter):
    """CSV (or TSV): UTF-8, a BOM with ``--excel``, lists joined with '; ', formulas
    neutralised, text whole however long (with a warning for cells Excel would cut)."""

    delimiter = ","

    def __init__(self, path: Path, options: ExportOptions, about: Mapping[str, str]):
        self.encoding = "utf-8-sig" if options.excel else "utf-8"
        super().__init__(path, options, about)
        self.csv = csv.writer(self.fh, delimiter=self.delimiter)
        self.csv.writerow(self.columns)
        self.too_long = 0

    def write(self, rows: Sequence[Row]) -> None:
        for row in rows:
            cells = [_flat(row[c], c) for c in self.columns]
            cells = [escape_cell(v) if isinstance(v, str) else v for v in cells]
            self.too_long += sum(isinstance(v, str) and excel_len(v) > EXCEL_CELL_MAX
                                 for v in cells)
            self.csv.writerow(cells)

    def finish(self, count: int) -> None:
        if self.too_long:
            self.warnings.append(
                f"{self.too_long} cells are longer than Excel's {EXCEL_CELL_MAX:,}-character "
                "limit. The file holds them whole (pandas and R read them), but Excel cuts "
                "them when it opens this file; use --format xlsx, which keeps the rest on its "
                "'overflow' sheet.")


class TsvWriter(CsvWriter):
    delimiter = "\t"


class JsonlWriter(TextWriter):
    """One JSON object per line; lists stay lists, text unescaped, missing values null."""

    def write(self, rows: Sequence[Row]) -> None:
        self.fh.writelines(json_line({c: row[c] for c in self.columns}) for row in rows)


def arrow_schema(columns: Sequence[str]) -> pa.Schema:
    """The fixed Parquet schema: every column typed and described, even when empty."""
    def kind(col: str) -> pa.DataType:
        return {"int": pa.int64() if col == "pmid" else pa.int32(), "float": pa.float64(),
                "bool": pa.bool_(), "list": pa.list_(pa.string()),
                "nested": pa.list_(EVIDENCE_STRUCT), "doses": pa.list_(DOSE_STRUCT),
                "range": pa.list_(pa.float64()), "str": pa.string()}[COLUMNS[col].kind]

    return pa.schema([pa.field(c, kind(c), metadata={"description": COLUMNS[c].description})
                      for c in columns])


class ParquetWriter(Writer):
    """Parquet with a fixed schema; one row group per chunk."""

    def __init__(self, path: Path, options: ExportOptions, about: Mapping[str, str]):
        super().__init__(path, options, about)
        schema = arrow_schema(self.columns).with_metadata(
            {"kratomlit": json.dumps(dict(about), ensure_ascii=False)})
        self.schema = schema
        self.pq = pq.ParquetWriter(path, schema, compression="zstd")

    def write(self, rows: Sequence[Row]) -> None:
        table = pa.Table.from_pylist([{c: r[c] for c in self.columns} for r in rows],
                                     schema=self.schema)
        self.pq.write_table(table)

    def close(self) -> None:
        self.pq.close()


# ---- XLSX -------------------------------------------------------------------------------

WIDTHS = {"title": 60, "abstract": 80, "authors": 40, "affiliations": 40, "journal": 30,
          "mesh": 40, "keywords": 30, "publication_types": 25, "corrections": 30,
          "searches": 25, "url": 38, "first_seen": 24, "classifier_version": 18,
          "first_author": 20, "doi": 24, "pub_date": 12, "topics": 20}


class XlsxWriter(Writer):
    """XLSX: sheet 'records' (header frozen, filters on, set widths), 'columns' (what each
    column holds and how the file was made) and 'overflow' (the rest of any cell longer
    than Excel's limit, in pieces: concatenate the unescaped pieces for the whole text).
    A last column, ``continued``, names in each row the cells that go on in 'overflow', so
    a cut text never looks complete."""

    def __init__(self, path: Path, options: ExportOptions, about: Mapping[str, str]):
        super().__init__(path, options, about)
        self.book = xlsxwriter.Workbook(str(path), {"constant_memory": True})
        self.bold = self.book.add_format({"bold": True})
        self.sheet = self.book.add_worksheet("records")
        self.info = self.book.add_worksheet("columns")
        self.over = self.book.add_worksheet("overflow")
        self.row = self.over_row = 0
        self.overflowed = 0
        self.sheet.freeze_panes(1, 0)
        for i, col in enumerate(self.columns):
            self.sheet.set_column(i, i, WIDTHS.get(col, 14))
        self.sheet.write_row(0, 0, [*self.columns, CONTINUED], self.bold)
        self.sheet.set_column(len(self.columns), len(self.columns), 22)
        self.over.set_column(4, 4, 80)
        self.over.write_row(0, 0, ["row", "pmid", "column", "part", "text"], self.bold)
        self.closed = False

    def write(self, rows: Sequence[Row]) -> None:
        if self.row + len(rows) >= XLSX_MAX_ROWS:
            raise ExportError(f"XLSX holds at most {XLSX_MAX_ROWS - 1:,} records; narrow the "
                              "export (filters) or use --format csv or parquet.")
        for row in rows:
            self.row += 1
            cut = [col for i, col in enumerate(self.columns)
                   if self._cell(i, col, _flat(row[col], col), row.get("pmid"))]
            if cut:
                self.sheet.write_string(self.row, len(self.columns),
                                        f"{', '.join(cut)} (see 'overflow' sheet)")

    def _cell(self, i: int, col: str, value: Any, pmid: Any) -> bool:
        """Write one cell; True when its text continues on the overflow sheet."""
        if value is None or value == "":
            return False
        if not isinstance(value, str):
            self.sheet.write(self.row, i, value)
            return False
        first, *rest = excel_parts(value)
        self.sheet.write_string(self.row, i, escape_cell(first))  # never a formula
        if rest:
            self.overflowed += 1
        for n, part in enumerate(rest, start=2):
            self.over_row += 1
            self.over.write_row(self.over_row, 0, [self.row + 1, pmid or "", col, n])
            self.over.write_string(self.over_row, 4, escape_cell(part))
        return bool(rest)

    def finish(self, count: int) -> None:
        self.sheet.autofilter(0, 0, max(self.row, 1), len(self.columns))
        self._describe(count)
        if self.overflowed:
            self.warnings.append(
                f"{self.overflowed} cells are longer than Excel's {EXCEL_CELL_MAX:,}-character "
                "limit; each continues on the 'overflow' sheet (row, column, part), and its "
                "row's 'continued' column says which.")
        self._close_book()

    def _describe(self, count: int) -> None:
        self.info.set_column(0, 0, 24)
        self.info.set_column(1, 1, 90)
        lines: list[tuple[str, str]] = [(c, COLUMNS[c].description) for c in self.columns]
        lines += [(CONTINUED, "columns of this row whose text is longer than Excel's cell "
                   "limit and continues on the 'overflow' sheet (empty: nothing cut)")]
        lines += [("", ""), ("about this file", "")]
        lines += [(k, v) for k, v in self.about.items()] + [("records", str(count))]
        lines += [("cell rule", "a text cell starting with = + - @ ' tab CR or LF got one "
                   "leading apostrophe (remove it for the original text); lists are "
                   "joined with '; '")]
        self.info.write_row(0, 0, ["column", "contents"], self.bold)
        for n, (key, text) in enumerate(lines, start=1):  # strings, never formulas: as written
            self.info.write_string(n, 0, key)
            self.info.write_string(n, 1, text)

    def _close_book(self) -> None:
        if not self.closed:
            self.closed = True
            try:
                self.book.close()
            except FileCreateError as exc:  # wraps the OSError (disk full, permissions)
                cause = exc.args[0] if exc.args else exc
                raise cause if isinstance(cause, OSError) else OSError(str(exc)) from exc

    def close(self) -> None:
        self._close_book()  # on failure the temporary file is removed anyway


# ---- RIS and BibTeX -----------------------------------------------------------------------

_CITED_NAME = re.compile(
    r"^(?P<last>.*\S) (?P<initials>[A-Z]{1,4})(?P<suffix> (?:Jr|Sr|I{2,3}|IV))?$")
_ISO_DATE = re.compile(r"(\d{4})(?:-(\d{2}))?(?:-(\d{2}))?")


def _ris_author(name: str) -> str:
    """``Alvarez MJ`` -> ``Alvarez, MJ`` (RIS wants ``Last, First``); collectives unchanged."""
    m = _CITED_NAME.match(name)
    if not m:
        return name
    return f"{m['last']}, {m['initials']}" + (f",{m['suffix']}" if m["suffix"] else "")


def _line(value: Any) -> str:
    """One line: a RIS tag ends at the line break (rispy reads a continuation line as a
    space anyway), and a line break in a value could forge an ``ER  -`` line."""
    return "" if value is None else " ".join(str(value).split())


def ris_date(pub_date: str, year: int | None) -> str:
    """RIS ``DA``: ``YYYY/MM/DD/other``; PubMed's MedlineDate goes in 'other'."""
    m = _ISO_DATE.fullmatch(pub_date)
    if m:
        return f"{m[1]}/{m[2] or ''}/{m[3] or ''}/"
    if not year:
        return ""
    return f"{year}///{pub_date.removeprefix(str(year)).strip()}"


def ris_entry(row: Row) -> dict[str, Any]:
    """TY, TI, AU, PY, DA, T2, JO, VL, IS, SP/EP, AB, DO, AN (PMID), LA, KW, UR, N1."""
    start, _, end = _line(row["pages"]).partition("-")
    notes = [f"PMID: {row['pmid']}"]
    notes += [f"PMCID: {row['pmcid']}"] if row["pmcid"] else []
    notes += [f"Topics: {SEP.join(row['topics'])}"] if row["topics"] else []
    notes += [f"RETRACTED: {_line(SEP.join(row['corrections']))}"] if row["retracted"] else []
    entry = {
        "type_of_reference": "JOUR", "title": _line(row["title"]),
        "authors": [_ris_author(_line(a)) for a in row["authors"]],
        "year": str(row["year"] or ""), "date": ris_date(row["pub_date"], row["year"]),
        "secondary_title": _line(row["journal"]), "journal_name": _line(row["journal_iso"]),
        "volume": _line(row["volume"]), "number": _line(row["issue"]), "start_page": start,
        "end_page": end, "abstract": _line(row["abstract"]), "doi": _line(row["doi"]),
        "accession_number": str(row["pmid"]), "language": _line(SEP.join(row["language"])),
        "keywords": [_line(k) for k in [*row["keywords"], *row["mesh"]] if _line(k)],
        "urls": [row["url"]], "notes": notes,
    }
    return {k: v for k, v in entry.items() if v}


class _PlainRisWriter(rispy.RisWriter):
    """rispy's writer without its "1." line before each record: importers that detect RIS
    by an early ``TY  -`` line (Zotero) or read strict tag lines expect none."""

    def set_header(self, count: int) -> str:
        return ""


class RisWriter(TextWriter):
    """RIS for Zotero, EndNote, Rayyan and ASReview; TI (not T1, which ASReview misses)."""

    def write(self, rows: Sequence[Row]) -> None:
        text = rispy.dumps([ris_entry(r) for r in rows], implementation=_PlainRisWriter)
        self.fh.write(text.rstrip("\n") + "\n\n")


_BRACES = re.compile(r"[{}]")


def bibtex_value(text: str) -> str:
    """The text as written, except: a tab becomes a space (bibtexparser 1.x expands tabs
    when reading; to BibTeX both are a space), a CR a line feed (text-mode readers turn it
    into one anyway), and since BibTeX holds text in braces,
    unbalanced braces (rare in PubMed) become ``\\textbraceleft{}``/``\\textbraceright{}``."""
    text = text.replace("\t", " ").replace("\r\n", "\n").replace("\r", "\n")
    depth = 0
    for ch in _BRACES.findall(text):
        depth += 1 if ch == "{" else -1
        if depth < 0:
            break
    if depth == 0:
        return text
    return text.replace("{", "\0").replace("}", "\\textbraceright{}").replace(
        "\0", "\\textbraceleft{}")


def bibtex_key(row: Row) -> str:
    """``pmid12345``: unique in a library and stable across exports and PubMed revisions
    (author or year can be corrected; the PMID never changes)."""
    return f"pmid{row['pmid']}"


def _bib_author(name: str) -> str:
    cited = _ris_author(name)
    return cited if cited != name else "{" + name + "}"  # a collective name stays whole


def bibtex_entry(row: Row) -> dict[str, str]:
    fields = {
        "title": row["title"], "author": " and ".join(_bib_author(a) for a in row["authors"]),
        "journal": row["journal"], "year": str(row["year"] or ""), "volume": row["volume"],
        "number": row["issue"], "pages": row["pages"].replace("-", "--"), "doi": row["doi"],
        "pmid": str(row["pmid"]), "pmcid": row["pmcid"], "url": row["url"],
        "abstract": row["abstract"], "keywords": SEP.join([*row["keywords"], *row["mesh"]]),
        "language": SEP.join(row["language"]),
        "note": SEP.join(([f"Topics: {', '.join(row['topics'])}"] if row["topics"] else [])
                         + (["RETRACTED"] if row["retracted"] else [])),
    }
    entry = {k: bibtex_value(v) for k, v in fields.items() if v}
    return {"ENTRYTYPE": "article", "ID": bibtex_key(row), **entry}


class BibtexWriter(TextWriter):
    """BibTeX via bibtexparser 1.x's writer, in PMID order."""

    def __init__(self, path: Path, options: ExportOptions, about: Mapping[str, str]):
        super().__init__(path, options, about)
        self.bib = BibTexWriter()
        self.bib.order_entries_by = None
        self.bib.indent = "  "

    def write(self, rows: Sequence[Row]) -> None:
        db = BibDatabase()
        db.entries = [bibtex_entry(r) for r in rows]
        self.fh.write(self.bib.write(db))


WRITERS: dict[str, type[Writer]] = {
    "csv": CsvWriter, "tsv": TsvWriter, "xlsx": XlsxWriter, "ris": RisWriter,
    "bibtex": BibtexWriter, "jsonl": JsonlWriter, "parquet": ParquetWriter,
}


@contextmanager
def open_writer(options: ExportOptions, path: Path,
                about: Mapping[str, str]) -> Iterator[Writer]:
    """The writer for ``options.fmt`` on ``path``, closed however the block ends."""
    writer = WRITERS[options.fmt](path, options, about)
    try:
        yield writer
    finally:
        writer.close()


# ---- reading and rows (export.read_chunks, models.export_row) ---------------------------

def labels_from_row(version: str | None, topics: str | None, scores: str | None,
                    evidence: str | None) -> Labels | None:
    if version is None:
        return None
    found = json.loads(evidence or "{}")
    return Labels(version, json.loads(topics or "[]"), json.loads(scores or "{}"),
                  {t: [Evidence.from_dict(e) for e in ev] for t, ev in found.items()})


def extraction_from_row(data: str | None) -> Extraction | None:
    return Extraction.from_dict(json.loads(data)) if data else None


def library_records(db: sqlite3.Connection) -> list[LibraryRecord]:
    """Every live record in PMID order, as ``export.read_chunks`` read them."""
    sql = (
        "SELECT r.pmid, r.data, r.first_stored, (SELECT json_group_array(x) FROM ("
        "SELECT COALESCE(s.name, s.term) AS x FROM hits h JOIN searches s ON "
        "s.id = h.search_id WHERE h.pmid = r.pmid ORDER BY s.id)), "
        "l.version, l.topics, l.scores, l.evidence, e.version, e.data FROM records r "
        "LEFT JOIN labels l ON l.pmid = r.pmid LEFT JOIN extractions e ON e.pmid = r.pmid "
        "WHERE r.deleted_at IS NULL ORDER BY r.pmid")
    return [LibraryRecord(Record.from_dict(json.loads(data)), first,
                          list(dict.fromkeys(json.loads(searches))),
                          labels_from_row(version, topics, scores, evidence),
                          extraction_from_row(extracted), extractor or "")
            for (_pmid, data, first, searches, version, topics, scores, evidence, extractor,
                 extracted) in db.execute(sql)]


def evidence_objects(labels: Labels | None) -> list[dict[str, Any]]:
    if labels is None:
        return []
    return [{"topic": t, "assigned": t in labels.topics, **e.to_dict()}
            for t in TOPICS for e in labels.evidence.get(t, [])]


def extraction_cells(found: Extraction | None, version: str = "") -> dict[str, Any]:
    if found is None:
        return {"design": "", "n": None, "doses": [], "kratom_g_per_day": None,
                "extractor_version": ""}
    return {"design": found.design, "n": found.n,
            "doses": [d.to_dict() for d in found.doses],
            "kratom_g_per_day": list(found.kratom_g_per_day) if found.kratom_g_per_day
            else None, "extractor_version": version}


def export_row(item: LibraryRecord) -> dict[str, Any]:
    rec, labels = item.record, item.labels
    names = rec.author_names
    scores = labels.scores if labels else {}
    return {
        "pmid": rec.pmid, "title": rec.title, "abstract": rec.abstract,
        "authors": names, "first_author": names[0] if names else "",
        "affiliations": rec.affiliations, "journal": rec.journal,
        "journal_iso": rec.journal_iso, "year": rec.pub_year, "pub_date": rec.pub_date,
        "volume": rec.volume, "issue": rec.issue, "pages": rec.pages, "doi": rec.doi,
        "pmcid": rec.pmcid, "url": rec.url, "mesh": rec.mesh_headings,
        "keywords": list(rec.keywords), "publication_types": list(rec.publication_types),
        "language": list(rec.languages), "retracted": rec.retracted,
        "corrections": [correction_text(c) for c in rec.corrections],
        "searches": list(item.searches), "first_seen": item.first_stored,
        "topics": list(labels.topics) if labels else [],
        **{f"score_{t}": scores.get(t) for t in TOPICS},
        "classifier_version": labels.version if labels else "",
        **{f"evidence_{t}": labels.evidence_phrases(t) if labels else [] for t in TOPICS},
        "evidence": evidence_objects(labels),
        **extraction_cells(item.extraction, item.extractor_version),
    }


def reference_export(db: sqlite3.Connection, path: Path, options: ExportOptions,
                     about: Mapping[str, str], chunk: int = 2000) -> int:
    """Every record of the library, written by the reference writers in chunks of
    ``chunk`` rows (no filters: the parity test compares the writing, not the selection)."""
    rows = [export_row(r) for r in library_records(db)]
    rows = [{c: row[c] for c in options.columns} for row in rows]
    with open_writer(options, path, about) as w:
        for start in range(0, len(rows), chunk):
            w.write(rows[start:start + chunk])
        w.finish(len(rows))
    return len(rows)
