"""Library records -> one table (pandas) -> a file in the reviewer's format.

A new format is one writer function added to ``WRITERS``. Every file is written to a
temporary file beside the target and renamed into place, so a failed export never
leaves a half-written file. CSV and XLSX cells that a spreadsheet would run as a formula
(OWASP CSV injection: leading ``= + - @``, tab, CR, LF) get a leading apostrophe.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import pandas as pd
import rispy
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
from openpyxl.utils.exceptions import IllegalCharacterError

from kratomlit.errors import ExportError
from kratomlit.files import atomic_path
from kratomlit.parse import author_name, mesh_heading

PUBMED_URL = "https://pubmed.ncbi.nlm.nih.gov/{pmid}/"
TOPICS = ("mechanism", "withdrawal", "safety", "dosing")
SEP = "; "
FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "\n")
XLSX_CELL_MAX = 32767  # Excel's hard limit per cell

# column -> what it holds (README "Export columns" is written from this)
COLUMNS: dict[str, str] = {
    "pmid": "PubMed ID",
    "title": "article title, inline markup reduced to text",
    "abstract": "abstract; structured sections as 'LABEL: text' paragraphs",
    "authors": "authors as 'Last FM', collective names as written, '; '-separated",
    "affiliations": "distinct author affiliations, '; '-separated",
    "journal": "journal title (book title for PubMed books)",
    "journal_iso": "ISO journal abbreviation",
    "year": "publication year (from MedlineDate when needed)",
    "pub_date": "publication date: YYYY-MM-DD, YYYY-MM, 'YYYY Season' or PubMed's MedlineDate",
    "volume": "volume",
    "issue": "issue",
    "pages": "pages",
    "doi": "DOI",
    "pmcid": "PubMed Central ID",
    "mesh": "MeSH descriptors, '*' marks a major topic, qualifiers after '/'",
    "keywords": "author keywords",
    "publication_types": "PubMed publication types",
    "language": "language codes",
    "retracted": "true when PubMed links a retraction notice",
    "corrections": "retraction/erratum links as 'Type: source (PMID n)'",
    "url": "PubMed page",
    "searches": "saved-search names (or terms) that found the record, ' | '-separated",
    "first_stored": "when the library first stored the record (UTC)",
    "topics": "topics the classifier assigned, '; '-separated (empty until classified)",
    **{f"score_{t}": f"classifier score for {t}, 0-1" for t in TOPICS},
    "classifier_version": "version of the classifier that made the labels",
}

Writer = Callable[[pd.DataFrame, Path], None]


def to_frame(rows: Iterable[Mapping[str, Any]],
             labels: Mapping[int, Mapping[str, Any]] | None = None) -> pd.DataFrame:
    """One row per record with the documented ``COLUMNS``."""
    labels = labels or {}
    table = [_row(r, labels.get(int(r["pmid"]))) for r in rows]
    df = pd.DataFrame(table, columns=list(COLUMNS))
    df["year"] = df["year"].astype("Int64")  # stays 2020, not 2020.0, when a year is missing
    return df


def _row(rec: Mapping[str, Any], label: Mapping[str, Any] | None) -> dict[str, Any]:
    authors = [a for a in rec["authors"] if a.get("valid", True)]  # ValidYN="N": misspellings
    affiliations = dict.fromkeys(a for au in authors for a in au["affiliations"])
    scores = label["scores"] if label else {}
    return {
        "pmid": int(rec["pmid"]),
        "title": rec["title"],
        "abstract": rec["abstract"],
        "authors": SEP.join(author_name(a) for a in authors),
        "affiliations": SEP.join(affiliations),
        "journal": rec["journal"],
        "journal_iso": rec["journal_iso"],
        "year": rec["pub_year"],
        "pub_date": rec["pub_date"],
        "volume": rec["volume"],
        "issue": rec["issue"],
        "pages": rec["pages"],
        "doi": rec["doi"],
        "pmcid": rec["pmcid"],
        "mesh": SEP.join(mesh_heading(m) for m in rec["mesh"]),
        "keywords": SEP.join(rec["keywords"]),
        "publication_types": SEP.join(rec["publication_types"]),
        "language": SEP.join(rec["languages"]),
        "retracted": any(c["type"] == "RetractionIn" for c in rec["corrections"])
        or "Retracted Publication" in rec["publication_types"],
        "corrections": SEP.join(_correction(c) for c in rec["corrections"]),
        "url": PUBMED_URL.format(pmid=rec["pmid"]),
        "searches": rec.get("searches", ""),
        "first_stored": rec.get("first_stored", ""),
        "topics": SEP.join(label["topics"]) if label else "",
        **{f"score_{t}": scores.get(t) for t in TOPICS},
        "classifier_version": label["version"] if label else "",
    }


def _correction(c: Mapping[str, str]) -> str:
    return f"{c['type']}: {c['source']}" + (f" (PMID {c['pmid']})" if c["pmid"] else "")


def escape_formulas(df: pd.DataFrame) -> pd.DataFrame:
    """Prefix an apostrophe to text cells a spreadsheet would evaluate."""
    out = df.copy()
    for col in out.columns:
        if _is_text(out[col]):
            out[col] = out[col].map(_escape_cell)
    return out


def _is_text(column: pd.Series) -> bool:
    return column.dtype == object or pd.api.types.is_string_dtype(column)


def _escape_cell(value: Any) -> Any:
    if isinstance(value, str) and value.startswith(FORMULA_START):
        return "'" + value
    return value


def write_csv(df: pd.DataFrame, path: Path) -> None:
    # UTF-8 with BOM so Excel reads accents and Greek letters correctly
    escape_formulas(df).to_csv(path, index=False, encoding="utf-8-sig")


def write_jsonl(df: pd.DataFrame, path: Path) -> None:
    with path.open("w", encoding="utf-8") as fh:
        for rec in df.to_dict(orient="records"):
            clean = {k: (None if _is_missing(v) else v) for k, v in rec.items()}
            fh.write(json.dumps(clean, ensure_ascii=False, default=str) + "\n")


def _is_missing(value: Any) -> bool:
    return not isinstance(value, (list, dict, str)) and bool(pd.isna(value))


def write_xlsx(df: pd.DataFrame, path: Path) -> None:
    """Excel via openpyxl; control characters Excel refuses are dropped, and cells past its
    32,767-character limit are cut with a marker."""
    safe = escape_formulas(df)
    for col in safe.columns:
        if _is_text(safe[col]):
            safe[col] = safe[col].map(_fit_cell)
    safe.to_excel(path, index=False, sheet_name="records", engine="openpyxl")


def _fit_cell(value: Any) -> Any:
    marker = " [truncated: see the JSONL export]"
    if not isinstance(value, str):
        return value
    value = ILLEGAL_CHARACTERS_RE.sub("", value)
    if len(value) > XLSX_CELL_MAX:
        return value[: XLSX_CELL_MAX - len(marker)] + marker
    return value


_CITED_NAME = re.compile(
    r"^(?P<last>.*\S) (?P<initials>[A-Z]{1,4})(?P<suffix> (?:Jr|Sr|I{2,3}|IV))?$")


def _ris_author(name: str) -> str:
    """``Alvarez MJ`` -> ``Alvarez, MJ`` (RIS wants ``Last, First``); collectives unchanged."""
    m = _CITED_NAME.match(name)
    if not m:
        return name
    return f"{m['last']}, {m['initials']}" + (f",{m['suffix']}" if m["suffix"] else "")


def _ris_entry(row: Mapping[str, Any]) -> dict[str, Any]:
    def text(col: str) -> str:
        value = row.get(col)
        return "" if _is_missing(value) else " ".join(str(value).split())  # one line per tag

    start, _, end = text("pages").partition("-")
    notes = [f"PMID: {row['pmid']}"]
    notes += [f"PMCID: {text('pmcid')}"] if text("pmcid") else []
    notes += [f"Topics: {text('topics')}"] if text("topics") else []
    notes += [f"RETRACTED: {text('corrections')}"] if row.get("retracted") is True else []
    entry = {
        "type_of_reference": "JOUR", "title": text("title"),
        "authors": [_ris_author(a) for a in text("authors").split(SEP) if a],
        "year": text("year").removesuffix(".0"), "date": text("pub_date"),
        "secondary_title": text("journal"), "journal_name": text("journal_iso"),
        "volume": text("volume"), "number": text("issue"), "start_page": start,
        "end_page": end, "abstract": text("abstract"), "doi": text("doi"),
        "accession_number": str(row["pmid"]), "language": text("language"),
        "keywords": [k for k in text("keywords").split(SEP) + text("mesh").split(SEP) if k],
        "urls": [text("url")], "notes": notes,
    }
    return {k: v for k, v in entry.items() if v}


class _PlainRisWriter(rispy.RisWriter):
    """rispy's writer without its "1." line before each record: importers that detect RIS
    by an early ``TY  -`` line (Zotero) or read strict tag lines expect none."""

    def set_header(self, count: int) -> str:
        return ""


def write_ris(df: pd.DataFrame, path: Path) -> None:
    """RIS for Zotero, Rayyan, Covidence and ASReview: TI, AU, PY, T2, AB, DO, AN=PMID, KW."""
    entries = [_ris_entry(row) for row in df.to_dict(orient="records")]
    rispy.dump(entries, path, encoding="utf-8", implementation=_PlainRisWriter)


WRITERS: dict[str, Writer] = {"csv": write_csv, "jsonl": write_jsonl, "xlsx": write_xlsx,
                              "ris": write_ris}


def write_table(df: pd.DataFrame, fmt: str, path: Path) -> None:
    """Write ``df`` as ``fmt`` to ``path`` atomically (temporary file, then rename)."""
    if fmt not in WRITERS:
        raise ExportError(f"Unknown export format {fmt!r}; choose one of {', '.join(WRITERS)}.")
    directory = path.parent if str(path.parent) else Path(".")
    if not directory.is_dir():
        raise ExportError(f"Cannot write {path}: folder {directory} does not exist.")
    try:
        with atomic_path(path) as tmp:
            WRITERS[fmt](df, tmp)
    except OSError as exc:
        raise ExportError(f"Cannot write {path}: {exc.strerror or exc}.") from exc
    except (ValueError, IllegalCharacterError) as exc:  # a writer refusing a value
        raise ExportError(f"Cannot write {path} as {fmt}: {exc}. Try --format jsonl.") from exc
