"""Extracted fields (study design, n, doses): which records need extracting, and storing
each record's extraction with the extractor's version."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from kratomlit.models import Extraction, Record
from kratomlit.store.core import Database, dumps, loads, now_iso
from kratomlit.store.records import outdated


def extraction_from_row(data: str | None) -> Extraction | None:
    return Extraction.from_dict(loads(data)) if data else None


class ExtractionStore:
    def __init__(self, db: Database):
        self.lib = db

    def to_extract(self, version: str, redo_all: bool = False) -> Iterator[Record]:
        """Records never extracted, or extracted by another extractor version."""
        return outdated(self.lib, "extractions", version, redo_all)

    def save(self, version: str, items: Iterable[tuple[int, Extraction]]) -> int:
        """Store ``(pmid, extraction)`` pairs in one transaction."""
        stamp = now_iso()
        rows = [(pmid, version, x.design, x.design_confidence, x.n,
                 dumps(x.to_dict()), stamp) for pmid, x in items]
        with self.lib.transaction() as db:
            db.executemany(
                "INSERT INTO extractions (pmid, version, design, design_confidence, n, data, "
                "extracted_at) VALUES (?,?,?,?,?,?,?) ON CONFLICT (pmid) DO UPDATE SET "
                "version=excluded.version, design=excluded.design, "
                "design_confidence=excluded.design_confidence, n=excluded.n, "
                "data=excluded.data, extracted_at=excluded.extracted_at", rows)
        return len(rows)

    def get(self, pmid: int) -> Extraction | None:
        row = self.lib.db.execute("SELECT data FROM extractions WHERE pmid=?",
                                  (pmid,)).fetchone()
        return extraction_from_row(row[0]) if row else None
