"""Streaming writers, one per export format: each takes chunks of rows and appends them.

Rows hold native values (lists stay lists). CSV, TSV and XLSX join lists with ``'; '`` and
neutralise spreadsheet formulas (see ``escape_cell``); JSONL and Parquet keep lists and the
text as PubMed wrote it; RIS and BibTeX use maintained libraries (rispy, bibtexparser 1.x).
XLSX uses XlsxWriter's constant-memory mode: rows go to disk as they come and strings are
written inline, so memory stays flat (openpyxl's write-only mode still keeps every distinct
string in memory for its shared-strings table).
"""

from __future__ import annotations

import csv
import functools
import io
import json
import math
import re
import sys
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import rispy

from kratomlit.cells import (
    EXCEL_CELL_MAX,
    FORMULA_FIRST,
    escape_cell,
    excel_len,
    excel_parts,
    json_line,
)
from kratomlit.errors import ExportError
from kratomlit.models import COLUMNS, SEP, ExportOptions

if TYPE_CHECKING:  # pyarrow, XlsxWriter and bibtexparser: imported by the writers using them
    import pyarrow as pa

XLSX_MAX_ROWS = 1_048_576
CONTINUED = "continued"  # XLSX only: which cells of a row go on in the 'overflow' sheet
Row = Mapping[str, Any]


def _joined(value: Any) -> Any:
    """A list of text joined with '; ', a list of objects (``evidence``, only when
    --columns asks for it) as JSON text; anything else as it is."""
    if isinstance(value, list):
        if value and not isinstance(value[0], str):
            return json.dumps(value, ensure_ascii=False)
        return SEP.join(value)
    return value


def _dose_texts(value: Any) -> str:
    return SEP.join(dict.fromkeys(d["text"] for d in value))


def _low_high(value: Any) -> str:
    return "" if value is None else f"{value[0]:g}-{value[1]:g}"


Flattener = Callable[[Any], Any]
_FLATTEN: dict[str, Flattener] = {"doses": _dose_texts, "range": _low_high}


def flatteners(columns: Sequence[str]) -> list[tuple[str, Flattener]]:
    """Each column with the function that makes its one-cell value (looked up once per
    export, not once per cell)."""
    return [(c, _FLATTEN.get(COLUMNS[c].kind if c in COLUMNS else "", _joined))
            for c in columns]


class Writer(ABC):
    """Base: ``write`` each chunk, ``finish`` with the record count, then ``close``.

    A writer with ``parallel`` also splits ``write`` in two, so that a helper process can
    do the costly half of every other chunk (``export_parallel``): ``prepare`` turns rows
    into what the file takes (picklable; no file needed: such a helper's writer has
    ``path`` None), ``write_prepared`` appends that."""

    parallel = False

    def __init__(self, path: Path | None, options: ExportOptions,
                 about: Mapping[str, str]):
        self.path, self.options, self.about = path, options, about
        self.columns = list(options.columns)
        self.warnings: list[str] = []

    @abstractmethod
    def write(self, rows: Sequence[Row]) -> None:
        """Append one chunk of rows to the file."""

    def prepare(self, rows: Sequence[Row]) -> Any:
        """One chunk made ready for ``write_prepared`` (writers with ``parallel``)."""
        raise NotImplementedError

    def write_prepared(self, prepared: Any) -> None:
        """Append a chunk ``prepare`` made, here or in a helper process."""
        raise NotImplementedError

    def finish(self, count: int) -> None:  # noqa: B027 - an optional hook, no-op by default
        """Called once after the last chunk (not on failure)."""

    def close(self) -> None:  # noqa: B027 - an optional hook, no-op by default
        """Release files; called on success and failure."""


STDOUT = Path("-")  # the path that means "standard output" (export -o -)


LINES_PER_WRITE = 250


class TextWriter(Writer):
    """A writer that owns one text file handle, or writes to stdout for ``STDOUT``
    (UTF-8 and untranslated line endings either way). Subclasses give the text of a
    chunk as ``pieces``; a helper process sends it UTF-8 encoded (``prepare``)."""

    encoding = "utf-8"
    parallel = True

    def __init__(self, path: Path | None, options: ExportOptions,
                 about: Mapping[str, str]):
        super().__init__(path, options, about)
        self.fh: IO[str]
        if path is None:  # a helper's writer: only ``prepare`` is used, the header is lost
            self.fh = io.StringIO()
        elif path == STDOUT:
            sys.stdout.flush()
            self.fh = io.TextIOWrapper(sys.stdout.buffer, encoding=self.encoding, newline="")
        else:
            self.fh = path.open("w", encoding=self.encoding, newline="")

    @abstractmethod
    def pieces(self, rows: Sequence[Row]) -> Iterator[str]:
        """The chunk's text, in a few pieces (never one string per line)."""

    def write(self, rows: Sequence[Row]) -> None:
        for piece in self.pieces(rows):
            self.fh.write(piece)

    def prepare(self, rows: Sequence[Row]) -> Any:
        """The chunk's text as UTF-8 (a BOM only ever starts the file, so none here)."""
        return "".join(self.pieces(rows)).encode("utf-8")

    def write_prepared(self, prepared: Any) -> None:
        self.fh.flush()  # what went through the text layer first stays first
        self.fh.buffer.write(prepared)  # type: ignore[attr-defined]

    @staticmethod
    def lines(rows: Sequence[Row], line: Callable[[Row], str]) -> Iterator[str]:
        """``line(row)`` for every row, joined LINES_PER_WRITE rows at a time: a few writes
        per chunk instead of one per line, and never one chunk-sized string."""
        for start in range(0, len(rows), LINES_PER_WRITE):
            yield "".join([line(row) for row in rows[start:start + LINES_PER_WRITE]])

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
        csv.writer(self.fh, delimiter=self.delimiter).writerow(self.columns)
        self.flat = flatteners(self.columns)
        self.too_long = 0

    def pieces(self, rows: Sequence[Row]) -> Iterator[str]:
        """Lines joined here with the csv module's quoting (minimal, doubled quotes, CRLF),
        without its per-row call (tests/test_export_parity.py)."""
        return self.lines(rows, self._line)

    def prepare(self, rows: Sequence[Row]) -> Any:
        """The text, and how many of its cells are too long for Excel (for the warning)."""
        before = self.too_long
        return super().prepare(rows), self.too_long - before

    def write_prepared(self, prepared: Any) -> None:
        data, too_long = prepared
        super().write_prepared(data)
        self.too_long += too_long

    def _line(self, row: Row) -> str:
        delimiter, cells = self.delimiter, []
        for col, flat in self.flat:
            value = flat(row[col])
            if isinstance(value, str):
                if value[:1] in FORMULA_FIRST:
                    value = "'" + value  # escape_cell
                if len(value) > EXCEL_CELL_MAX // 2 and excel_len(value) > EXCEL_CELL_MAX:
                    self.too_long += 1
                if '"' in value:
                    value = '"' + value.replace('"', '""') + '"'
                elif delimiter in value or "\n" in value or "\r" in value:
                    value = '"' + value + '"'
            else:
                value = "" if value is None else str(value)  # as csv: str(), repr for floats
            cells.append(value)
        if len(cells) == 1 and not cells[0]:
            return '""\r\n'  # csv quotes a row of one empty field, or it would be no row
        return delimiter.join(cells) + "\r\n"

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

    def pieces(self, rows: Sequence[Row]) -> Iterator[str]:
        columns = self.columns
        return self.lines(rows, lambda row: json_line({c: row[c] for c in columns}))


def arrow_schema(columns: Sequence[str]) -> pa.Schema:
    """The fixed Parquet schema: every column typed and described, even when empty."""
    import pyarrow as pa  # here, not at the top: a fifth of a second other formats skip

    evidence = pa.struct([("topic", pa.string()), ("assigned", pa.bool_()),
                          ("phrase", pa.string()), ("sentence", pa.string()),
                          ("source", pa.string())])
    doses = pa.struct([("text", pa.string()), ("low", pa.float64()), ("high", pa.float64()),
                       ("unit", pa.string()), ("per", pa.string()),
                       ("substance", pa.string()), ("sentence", pa.string())])

    def kind(col: str) -> pa.DataType:
        return {"int": pa.int64() if col == "pmid" else pa.int32(), "float": pa.float64(),
                "bool": pa.bool_(), "list": pa.list_(pa.string()),
                "nested": pa.list_(evidence), "doses": pa.list_(doses),
                "range": pa.list_(pa.float64()), "str": pa.string()}[COLUMNS[col].kind]

    return pa.schema([pa.field(c, kind(c), metadata={"description": COLUMNS[c].description})
                      for c in columns])


class ParquetWriter(Writer):
    """Parquet with a fixed schema; one row group per chunk (a helper process may build
    the chunk's Arrow table: ``prepare``)."""

    parallel = True

    def __init__(self, path: Path | None, options: ExportOptions,
                 about: Mapping[str, str]):
        import pyarrow as pa
        import pyarrow.parquet as pq

        super().__init__(path, options, about)
        schema = arrow_schema(self.columns).with_metadata(
            {"kratomlit": json.dumps(dict(about), ensure_ascii=False)})
        self.schema = schema
        self.table = pa.Table.from_pydict
        self.pq = None if path is None else pq.ParquetWriter(path, schema, compression="zstd")

    def write(self, rows: Sequence[Row]) -> None:
        self.write_prepared(self.prepare(rows))

    def prepare(self, rows: Sequence[Row]) -> Any:
        return self.table({c: [r[c] for r in rows] for c in self.columns},
                          schema=self.schema)  # by column: no dict per row

    def write_prepared(self, prepared: Any) -> None:
        assert self.pq is not None, "a helper's writer has no file"
        self.pq.write_table(prepared)

    def close(self) -> None:
        if self.pq is not None:
            self.pq.close()


# ---- XLSX -------------------------------------------------------------------------------

# Text XlsxWriter rewrites before writing it inline: control characters, literal _xHHHH_
# escapes, U+FFFE/U+FFFF (its ``XMLwriter._escape_control_characters``)
_XLSX_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\ufffe\uffff]|_x[0-9a-fA-F]{4}_")


class XlsxRows:
    """Writes plain rows of the 'records' sheet straight to XlsxWriter's constant-memory
    row file, as its ``_write_single_row`` would write them (inline strings, numbers,
    booleans; no formats), without its per-cell calls: those were most of an XLSX export.
    Uses XlsxWriter internals (``fh``, ``table``, ``previous_row``, ``dim_rowmax``,
    ``_write_single_row``); tests/test_export_parity.py compares every part of the file
    with the public-API writer's. A row with a value it does not handle (a NaN, another
    type, text the cell limit would cut) is left to the caller."""

    def __init__(self, sheet: Any, width: int):
        from xlsxwriter.utility import xl_col_to_name

        self.sheet = sheet
        self.names = [xl_col_to_name(c) for c in range(width)]

    def write_row(self, row: int, values: Sequence[Any]) -> bool:
        """Write ``values`` (one-cell values, not yet escaped) as worksheet row ``row``
        plus its ``continued`` cell; False, having written nothing, when a value needs
        the public API."""
        cells: list[str] = []
        r = str(row + 1)
        for name, value in zip(self.names, values, strict=False):
            if value is None or value == "":
                continue
            kind = value.__class__
            if kind is str:
                if len(value) > EXCEL_CELL_MAX // 2 - 1:
                    return False  # may continue on the overflow sheet
                cells.append(_inline(name + r, escape_cell(value)))
            elif kind is bool:
                cells.append(f'<c r="{name}{r}" t="b"><v>{int(value)}</v></c>')
            elif (kind is int or kind is float) and math.isfinite(value):
                cells.append(f'<c r="{name}{r}"><v>{value:.16G}</v></c>')
            else:
                return False
        if not cells:
            return False
        sheet = self.sheet
        if sheet.table:  # a row the public API wrote is still pending: write it first
            sheet._write_single_row(row)
        sheet.previous_row = row
        if sheet.dim_rowmax is None or row > sheet.dim_rowmax:
            sheet.dim_rowmax = row
        sheet.fh.write(f'<row r="{r}">{"".join(cells)}</row>')
        return True


@contextmanager
def _fast_zip() -> Iterator[None]:
    """XlsxWriter's zip at deflate level 1 instead of zlib's default 6: a third of an XLSX
    export was compressing; the file is ~35% larger (bench data), its parts the same."""
    import xlsxwriter.workbook

    original = xlsxwriter.workbook.ZipFile
    xlsxwriter.workbook.ZipFile = functools.partial(original, compresslevel=1)  # type: ignore
    try:
        yield
    finally:
        xlsxwriter.workbook.ZipFile = original  # type: ignore


def xlsx_text(text: str) -> str:
    """Text for XlsxWriter's ``write_string``. It writes a string that looks like
    ``<r>…</r>`` into the sheet XML unescaped, as a rich-text run it assumes the caller
    built: a title such as ``<r>broken <b></r>`` would corrupt the workbook. Such text goes
    in as one escaped plain run instead, which every reader shows as the text itself."""
    if text.startswith("<r>") and text.endswith("</r>"):
        text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
        return f'<r><t xml:space="preserve">{text}</t></r>'
    return text


def _printable_but_tab_lf(text: str) -> bool:
    return text.isprintable() or text.replace("\n", " ").replace("\t", " ").isprintable()


def _inline(ref: str, text: str) -> str:
    """An inline string cell as XlsxWriter writes one in constant-memory mode (except text
    that looks like ``<r>…</r>``, which is escaped like any other: see ``xlsx_text``)."""
    # text with none of them holds no '_x' and is printable once its tabs and line feeds
    # (which stay as they are) are spaces: controls and U+FFFE/F are not printable. Three
    # C scans, where the regex on every multi-line abstract was 4% of an XLSX export
    if ("_x" in text or not _printable_but_tab_lf(text)) and _XLSX_CONTROL.search(text):
        from xlsxwriter.xmlwriter import XMLwriter  # rare: imported only when needed

        text = XMLwriter._escape_control_characters(text)
    space = ' xml:space="preserve"' if text[:1].isspace() or text[-1:].isspace() else ""
    if "&" in text or "<" in text or ">" in text:
        text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return f'<c r="{ref}" t="inlineStr"><is><t{space}>{text}</t></is></c>'


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
        import xlsxwriter  # here, not at the top: other formats skip importing it

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
        self.flat = flatteners(self.columns)
        self.fast = XlsxRows(self.sheet, len(self.columns) + 1)

    def write(self, rows: Sequence[Row]) -> None:
        if self.row + len(rows) >= XLSX_MAX_ROWS:
            raise ExportError(f"XLSX holds at most {XLSX_MAX_ROWS - 1:,} records; narrow the "
                              "export (filters) or use --format csv or parquet.")
        has_pmid = "pmid" in self.columns  # the overflow sheet names it only then
        for row in rows:
            self.row += 1
            values = [flat(row[col]) for col, flat in self.flat]
            if self.fast.write_row(self.row, values):
                continue
            pmid = row["pmid"] if has_pmid else None
            cut = [col for i, (col, value) in enumerate(zip(self.columns, values, strict=True))
                   if self._cell(i, col, value, pmid)]
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
        self.sheet.write_string(self.row, i, xlsx_text(escape_cell(first)))  # never a formula
        if rest:
            self.overflowed += 1
        for n, part in enumerate(rest, start=2):
            self.over_row += 1
            self.over.write_row(self.over_row, 0, [self.row + 1, pmid or "", col, n])
            self.over.write_string(self.over_row, 4, xlsx_text(escape_cell(part)))
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
            self.info.write_string(n, 0, xlsx_text(key))
            self.info.write_string(n, 1, xlsx_text(text))

    def _close_book(self) -> None:
        from xlsxwriter.exceptions import FileCreateError

        if not self.closed:
            self.closed = True
            try:
                with _fast_zip():
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
    if value is None:
        return ""
    text = str(value)
    # printable: no whitespace but ' ' (str.split's whitespace is Cc/Zs/Zl/Zp), so text
    # without doubled, leading or trailing spaces is already one clean line; so is a
    # structured abstract once its single line feeds are spaces (no split into words)
    flat = text if text.isprintable() else text.replace("\n", " ")
    if flat.isprintable() and "  " not in flat and flat[:1] != " " and flat[-1:] != " ":
        return flat
    return " ".join(text.split())


def _lines(items: list[Any]) -> list[Any]:
    """``_line`` of each item; one check of them all, joined, when all are clean text (the
    usual case: a '|' between them keeps each one's spaces apart)."""
    try:
        text = "|".join(items)
    except TypeError:  # not all text
        return [_line(item) for item in items]
    if (text.isprintable() and "  " not in text and "| " not in text and " |" not in text
            and text[:1] != " " and text[-1:] != " "):
        return items
    return [_line(item) for item in items]


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
        "authors": [_ris_author(a) for a in _lines(row["authors"])],
        "year": str(row["year"] or ""), "date": ris_date(row["pub_date"], row["year"]),
        "secondary_title": _line(row["journal"]), "journal_name": _line(row["journal_iso"]),
        "volume": _line(row["volume"]), "number": _line(row["issue"]), "start_page": start,
        "end_page": end, "abstract": _line(row["abstract"]), "doi": _line(row["doi"]),
        "accession_number": str(row["pmid"]), "language": _line(SEP.join(row["language"])),
        "keywords": [k for k in _lines([*row["keywords"], *row["mesh"]]) if k],
        "urls": [row["url"]], "notes": notes,
    }
    return {k: v for k, v in entry.items() if v}


class _PlainRisWriter(rispy.RisWriter):
    """rispy's writer without its "1." line before each record: importers that detect RIS
    by an early ``TY  -`` line (Zotero) or read strict tag lines expect none."""

    def __init__(self) -> None:
        super().__init__()
        self.rules = {label: self._rule(tag) for label, tag in self._rev_mapping.items()}

    def set_header(self, count: int) -> str:
        return ""

    def _format_line(self, tag: str, value: Any = "") -> str:
        return f"{tag}  - {value}"  # PATTERN.format(tag=tag, value=value), without format()

    def _rule(self, tag: str) -> tuple[str, str]:
        """``(line start, how)``: how ``_format_reference`` writes a label's value, checked
        in its order: ``skip``, ``list`` (a line per item), ``other`` (unknown tags: its
        own code), a delimiter to join a list with, or ``""`` (one line)."""
        start = self._format_line(tag)
        if tag == self.START_TAG or tag in self.ignore:
            return start, "skip"
        if tag in self.list_tags:
            return start, "list"
        if tag == self.UNKNOWN_TAG:
            return start, "other"
        return start, self.delimiter_map.get(tag, "")

    def reference(self, ref: Mapping[str, Any]) -> str:
        """One reference's lines as ``formats`` writes them, in one pass: rispy's per-line
        generator and lookups were half of a RIS export. Labels it warns about or treats
        specially (unknown tags, lists without ``enforce_list_tags``) use its code."""
        if not self.enforce_list_tags:
            return "\n".join(self._format_reference(ref, 1, 1))
        lines = [f"{self.START_TAG}  - {self._get_reference_type(ref)}"]
        for label, value in ref.items():
            start, how = self.rules.get(label, ("", "other"))
            if how == "":
                lines.append(f"{start}{value}")
            elif how == "list":
                for item in value:
                    lines.append(f"{start}{item}")
            elif how == "other":
                return "\n".join(self._format_reference(ref, 1, 1))
            elif how != "skip":
                lines.append(f"{start}{how.join(value)}")
        lines.append(self._format_line(self.END_TAG))
        return "\n".join(lines)


class RisWriter(TextWriter):
    """RIS for Zotero, EndNote, Rayyan and ASReview; TI (not T1, which ASReview misses)."""

    def __init__(self, path: Path, options: ExportOptions, about: Mapping[str, str]):
        super().__init__(path, options, about)
        self.ris = _PlainRisWriter()

    def pieces(self, rows: Sequence[Row]) -> Iterator[str]:
        """``rispy.dumps`` of the chunk's entries (references one blank line apart) with
        the trailing line feeds made two, each reference formatted in one pass."""
        reference = self.ris.reference
        yield "\n\n".join([reference(ris_entry(r)) for r in rows]) + "\n\n"


_BRACES = re.compile(r"[{}]")


def bibtex_value(text: str) -> str:
    """The text as written, except: a tab becomes a space (bibtexparser 1.x expands tabs
    when reading; to BibTeX both are a space), a CR a line feed (text-mode readers turn it
    into one anyway), and since BibTeX holds text in braces,
    unbalanced braces (rare in PubMed) become ``\\textbraceleft{}``/``\\textbraceright{}``."""
    if "\t" in text or "\r" in text:
        text = text.replace("\t", " ").replace("\r\n", "\n").replace("\r", "\n")
    if "{" not in text and "}" not in text:
        return text
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
        from kratomlit.export_bibtex import EntryWriter  # bibtexparser: imported when used

        super().__init__(path, options, about)
        self.bib = EntryWriter()
        self.bib.order_entries_by = None
        self.bib.indent = "  "

    def pieces(self, rows: Sequence[Row]) -> Iterator[str]:
        yield self.bib.entries_text([bibtex_entry(r) for r in rows])


WRITERS: dict[str, type[Writer]] = {
    "csv": CsvWriter, "tsv": TsvWriter, "xlsx": XlsxWriter, "ris": RisWriter,
    "bibtex": BibtexWriter, "jsonl": JsonlWriter, "parquet": ParquetWriter,
}


@contextmanager
def open_writer(options: ExportOptions, path: Path | None,
                about: Mapping[str, str]) -> Iterator[Writer]:
    """The writer for ``options.fmt`` on ``path`` (None: a helper process's, which only
    ``prepare``s), closed however the block ends."""
    writer = WRITERS[options.fmt](path, options, about)
    try:
        yield writer
    finally:
        writer.close()
