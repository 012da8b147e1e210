"""The export log: each finished export, so ``export --new`` knows where the previous
export of the same selection stopped."""

from __future__ import annotations

import json
from typing import Any

from kratomlit.store.core import Database, now_iso


class ExportLog:
    def __init__(self, db: Database):
        self.lib = db

    def last_complete(self, selector: str) -> str | None:
        """When the latest export of ``selector`` that kept every record began reading
        (UTC ISO). One filtered by topic, score, year or date left records out, so it
        cannot mark them as delivered."""
        return self.lib.db.execute(
            "SELECT max(started) FROM exports WHERE selector = ? AND complete = 1",
            (selector,)).fetchone()[0]

    def record(self, selector: str, started: str, fmt: str, path: str, count: int,
               complete: bool, options: dict[str, Any]) -> None:
        """Log one finished export; ``options`` is kept for people reading the log."""
        with self.lib.transaction() as db:
            db.execute("INSERT INTO exports (selector, started, finished, format, path, count, "
                       "filters, complete) VALUES (?,?,?,?,?,?,?,?)",
                       (selector, started, now_iso(), fmt, path, count,
                        json.dumps(options, ensure_ascii=False, default=str), int(complete)))
