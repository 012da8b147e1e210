"""Topic labels: which records need labelling, and storing labels with their version."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from kratomlit.models import Evidence, Labels, Record, built
from kratomlit.store.core import Database, dumps, loads, now_iso
from kratomlit.store.records import outdated


def labels_from_row(version: str | None, topics: str | None, scores: str | None,
                    evidence: str | None) -> Labels | None:
    """Labels from the ``labels`` columns (None when the record has none)."""
    if version is None:
        return None
    found = loads(evidence or "{}")
    return built(Labels, version=version, topics=loads(topics or "[]"),
                 scores=loads(scores or "{}"),
                 evidence={t: [Evidence.from_dict(e) for e in ev] for t, ev in found.items()})


class LabelStore:
    def __init__(self, db: Database):
        self.lib = db

    def to_label(self, version: str, redo_all: bool = False) -> Iterator[Record]:
        """Records with no labels, or labels from another classifier version."""
        return outdated(self.lib, "labels", version, redo_all)

    def save(self, labels: Iterable[tuple[int, Labels]]) -> int:
        """Store ``(pmid, labels)`` pairs in one transaction."""
        stamp = now_iso()
        rows = [(pmid, lab.version, dumps(lab.topics), dumps(lab.scores),
                 dumps({t: [e.to_dict() for e in ev] for t, ev in lab.evidence.items()}),
                 stamp) for pmid, lab in labels]
        with self.lib.transaction() as db:
            db.executemany(
                "INSERT INTO labels (pmid, version, topics, scores, evidence, labelled_at) "
                "VALUES (?,?,?,?,?,?) ON CONFLICT (pmid) DO UPDATE SET version=excluded.version,"
                " topics=excluded.topics, scores=excluded.scores, evidence=excluded.evidence, "
                "labelled_at=excluded.labelled_at", rows)
        return len(rows)

    def count(self) -> int:
        return self.lib.count("SELECT count(*) FROM labels")
