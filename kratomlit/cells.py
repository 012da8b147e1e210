"""Cell and line rules every text output shares (exports, the digest, ``list``): formula
neutralising for spreadsheets, Excel's cell limit, and JSON lines that line readers
cannot split. Plain Python, so light commands need no export machinery to use them."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

# OWASP CSV injection triggers, plus the apostrophe itself so that the rule is reversible:
# drop one leading apostrophe from a cell and you have the original text.
FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "\n", "'")
# the same, as a set of first characters: ``text[:1] in`` it is a hash lookup, where
# ``startswith`` with a tuple parses its arguments and tries each prefix in turn
FORMULA_FIRST = frozenset(FORMULA_START)
EXCEL_CELL_MAX = 32767  # characters (UTF-16 code units) Excel holds in one cell
# Line breaks to some line readers (str.splitlines, JavaScript) that JSON may leave raw
_LINE_BREAKS = {"\u0085": "\\u0085", "\u2028": "\\u2028", "\u2029": "\\u2029"}
# json.dumps(data, ensure_ascii=False, default=str) builds this encoder on every call
_ENCODE = json.JSONEncoder(ensure_ascii=False, default=str).encode


def escape_cell(text: str) -> str:
    """One leading apostrophe on text a spreadsheet could run as a formula (or that already
    starts with an apostrophe), as OWASP advises for CSV injection."""
    return "'" + text if text[:1] in FORMULA_FIRST else text  # text.startswith(FORMULA_START)


def unescape_cell(text: str) -> str:
    """The original text of an escaped cell (the inverse of ``escape_cell``)."""
    return text[1:] if text.startswith("'") else text


def excel_len(text: str) -> int:
    """Length as Excel counts it: UTF-16 code units (an emoji counts two). Computed in C:
    a per-character loop was half the time of a CSV export."""
    return len(text) if text.isascii() else len(text.encode("utf-16-le")) // 2


def excel_parts(text: str, limit: int = EXCEL_CELL_MAX - 1) -> list[str]:
    """``text`` cut into pieces Excel can hold, each with room for the escape apostrophe
    (a text that fits whole, apostrophe included, stays whole)."""
    if excel_len(escape_cell(text)) <= limit + 1:
        return [text]
    parts, start, size = [], 0, 0
    for i, ch in enumerate(text):
        width = 2 if ord(ch) > 0xFFFF else 1
        if size + width > limit:
            parts.append(text[start:i])
            start, size = i, 0
        size += width
    parts.append(text[start:])
    return parts


def json_line(data: Any) -> str:
    """``data`` as one JSON line (text unescaped) that no line reader splits: U+0085,
    U+2028 and U+2029 stay escaped; ends with a newline."""
    line = _ENCODE(data)
    if not line.isascii():
        for raw, escaped in _LINE_BREAKS.items():
            line = line.replace(raw, escaped)
    return line + "\n"


def csv_text(columns: Sequence[str], rows: Iterable[Mapping[str, Any]]) -> str:
    """Rows as CSV text with a header: text cells formula-neutralised (``escape_cell``),
    lists '; '-joined, None empty."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow([_cell(row[c]) for c in columns])
    return buffer.getvalue()


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, list):
        value = "; ".join(str(v) for v in value)
    return escape_cell(value) if isinstance(value, str) else value
