"""Small helpers several test files share (fixtures live in conftest.py)."""

from __future__ import annotations

import sqlite3
from pathlib import Path


def library_pmids(env: dict[str, str]) -> list[int]:
    """Every PMID row in KRATOMLIT_HOME's library, by PMID (a list, so a duplicate would
    show); [] before the library exists."""
    path = Path(env["KRATOMLIT_HOME"]) / "library.db"
    if not path.exists():
        return []
    with sqlite3.connect(path) as db:
        return [r[0] for r in db.execute("SELECT pmid FROM records ORDER BY pmid")]
