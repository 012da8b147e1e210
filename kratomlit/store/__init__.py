"""The local library: one SQLite file, and a small unit per concern.

``Library(path)`` opens it (``core``); ``library.records`` holds records and hits,
``library.runs`` searches, runs and refreshes, ``library.labels`` topic labels,
``library.extractions`` study design, n and doses, and ``library.exports`` the export
log. Read queries that serve one command (export paging, the digest, the report) live
beside that command and use ``library.db``."""

from __future__ import annotations

from pathlib import Path

from kratomlit.store.core import BUSY_TIMEOUT_S, Database, now_iso
from kratomlit.store.exports import ExportLog
from kratomlit.store.extractions import ExtractionStore
from kratomlit.store.labels import LabelStore
from kratomlit.store.records import RecordStore
from kratomlit.store.runs import RunLog, SearchRow

__all__ = ["Library", "SearchRow", "now_iso"]


class Library(Database):
    """The library at ``path`` with its units; use as a context manager."""

    def __init__(self, path: Path, readonly: bool = False,
                 busy_timeout: float = BUSY_TIMEOUT_S):
        super().__init__(path, readonly, busy_timeout)
        self.records = RecordStore(self)
        self.runs = RunLog(self)
        self.labels = LabelStore(self)
        self.exports = ExportLog(self)
        self.extractions = ExtractionStore(self)

    def __enter__(self) -> Library:
        return self

    def summary(self) -> dict[str, object]:
        """What the library holds, for ``info``."""
        last = self.runs.last_refresh()
        return {"records": self.records.count(),
                "searches": self.count("SELECT count(*) FROM searches"),
                "runs": self.count("SELECT count(*) FROM runs"),
                "labelled": self.labels.count(),
                "last refresh": f"{last[0]}, {last[1]}" if last else "never"}
