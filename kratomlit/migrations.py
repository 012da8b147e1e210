"""Numbered schema migrations for the library database, applied in order when it is opened.

Add a change as a new ``mNNN_*`` function decorated with ``@migration``; never edit one
that has shipped. Each runs in its own transaction and is recorded in ``_migrations``.

Status values as they are now (the comments in early migrations predate some of them):
``runs.status`` running | complete | incomplete (PubMed listed fewer PMIDs than its Count)
| failed; ``refreshes.status`` running | complete | partial | failed | interrupted.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from datetime import UTC, datetime

Migration = Callable[[sqlite3.Connection], None]
MIGRATIONS: list[Migration] = []


def migration(fn: Migration) -> Migration:
    MIGRATIONS.append(fn)
    return fn


@migration
def m001_initial(db: sqlite3.Connection) -> None:
    _script(db, """
        CREATE TABLE records (
            pmid INTEGER PRIMARY KEY,
            kind TEXT NOT NULL DEFAULT 'article',
            title TEXT NOT NULL DEFAULT '',
            abstract TEXT NOT NULL DEFAULT '',
            journal TEXT NOT NULL DEFAULT '',
            pub_year INTEGER,
            doi TEXT NOT NULL DEFAULT '',
            pmcid TEXT NOT NULL DEFAULT '',
            retracted INTEGER NOT NULL DEFAULT 0,
            date_revised TEXT NOT NULL DEFAULT '',
            data TEXT NOT NULL,          -- the whole normalised record as JSON
            raw_xml TEXT NOT NULL,       -- the record's XML exactly as NCBI sent it
            first_stored TEXT NOT NULL,  -- UTC ISO time the library first held it
            last_fetched TEXT NOT NULL,
            deleted_at TEXT              -- set when PubMed sends a DeleteCitation
        );
        CREATE INDEX records_first_stored ON records (first_stored);
        CREATE TABLE searches (
            id INTEGER PRIMARY KEY,
            term TEXT NOT NULL,
            mindate TEXT NOT NULL DEFAULT '',
            maxdate TEXT NOT NULL DEFAULT '',
            name TEXT,                   -- saved-search name, when run with --saved
            created TEXT NOT NULL,
            UNIQUE (term, mindate, maxdate)
        );
        CREATE TABLE runs (
            id INTEGER PRIMARY KEY,
            search_id INTEGER NOT NULL REFERENCES searches (id),
            started TEXT NOT NULL,
            finished TEXT,
            count INTEGER,               -- PubMed's Count for the search
            retrieved INTEGER,           -- PMIDs listed by ESearch (all slices)
            new INTEGER, updated INTEGER, held INTEGER,
            status TEXT NOT NULL DEFAULT 'running'  -- running | complete | failed
        );
        CREATE TABLE hits (
            search_id INTEGER NOT NULL REFERENCES searches (id),
            pmid INTEGER NOT NULL REFERENCES records (pmid),
            first_seen TEXT NOT NULL,
            last_seen TEXT NOT NULL,
            PRIMARY KEY (search_id, pmid)
        );
        CREATE INDEX hits_pmid ON hits (pmid);
    """)


@migration
def m002_topic_labels(db: sqlite3.Connection) -> None:
    _script(db, """
        CREATE TABLE labels (
            pmid INTEGER PRIMARY KEY REFERENCES records (pmid),
            version TEXT NOT NULL,       -- classifier version that made the labels
            topics TEXT NOT NULL,        -- JSON list of decided topics
            scores TEXT NOT NULL,        -- JSON object topic -> score
            evidence TEXT NOT NULL,      -- JSON object topic -> [{phrase, sentence, source}]
            labelled_at TEXT NOT NULL
        );
    """)


@migration
def m003_exports(db: sqlite3.Connection) -> None:
    """Each finished export, so ``export --new`` knows when the same search was last exported."""
    _script(db, """
        CREATE TABLE exports (
            id INTEGER PRIMARY KEY,
            selector TEXT NOT NULL,      -- 'saved:NAME', 'search:ID' or 'library'
            started TEXT NOT NULL,       -- UTC ISO time reading began: the next --new cut-off
            finished TEXT NOT NULL,
            format TEXT NOT NULL,
            path TEXT NOT NULL,
            count INTEGER NOT NULL,      -- records written
            filters TEXT NOT NULL        -- JSON of the options used
        );
        CREATE INDEX exports_selector ON exports (selector, started);
    """)


@migration
def m004_refreshes(db: sqlite3.Connection) -> None:
    """``refresh`` runs, which searches ran in them, and which runs checked revisions.

    A search run is a base for the next ``[mdat]`` revision window only once the revisions
    up to its start were checked (``search`` does that itself; ``refresh`` checks all its
    searches at once afterwards), so runs made before this migration count as checked.
    """
    _script(db, """
        CREATE TABLE refreshes (
            id INTEGER PRIMARY KEY,
            started TEXT NOT NULL,
            finished TEXT,
            status TEXT NOT NULL DEFAULT 'running', -- running|complete|partial|failed|interrupted
            pid INTEGER,
            searches INTEGER, failed INTEGER,
            new INTEGER, updated INTEGER, labelled INTEGER,
            requests INTEGER,
            revisions_since TEXT          -- start of the [mdat] window checked, if any
        );
        ALTER TABLE runs ADD COLUMN refresh_id INTEGER REFERENCES refreshes (id);
        ALTER TABLE runs ADD COLUMN requests INTEGER;
        ALTER TABLE runs ADD COLUMN error TEXT;
        ALTER TABLE runs ADD COLUMN revisions_checked INTEGER NOT NULL DEFAULT 1;
        CREATE INDEX hits_first_seen ON hits (first_seen)
    """)


@migration
def m005_export_complete(db: sqlite3.Connection) -> None:
    """The export log says itself whether an export kept every record of its selector (no
    topic, score, year or date filter), instead of ``--new`` reading the option names
    inside ``filters``."""
    _script(db, """
        ALTER TABLE exports ADD COLUMN complete INTEGER NOT NULL DEFAULT 0;
        UPDATE exports SET complete = 1 WHERE json_extract(filters, '$.topics') IS NULL
            AND json_extract(filters, '$.min_score') IS NULL
            AND json_extract(filters, '$.year_from') IS NULL
            AND json_extract(filters, '$.year_to') IS NULL
            AND json_extract(filters, '$.since') IS NULL
    """)


@migration
def m006_extractions(db: sqlite3.Connection) -> None:
    """Study design, people analysed and doses per record, with the extractor version
    (re-extracted when the version changes or the record is revised, like topic labels)."""
    _script(db, """
        CREATE TABLE extractions (
            pmid INTEGER PRIMARY KEY REFERENCES records (pmid),
            version TEXT NOT NULL,        -- extractor version that made it
            design TEXT NOT NULL,         -- one of models.DESIGNS
            design_confidence REAL NOT NULL,
            n INTEGER,                    -- people analysed, NULL when not stated
            data TEXT NOT NULL,           -- JSON: models.Extraction.to_dict()
            extracted_at TEXT NOT NULL
        );
        CREATE INDEX extractions_design ON extractions (design)
    """)


@migration
def m007_live_records_index(db: sqlite3.Connection) -> None:
    """The PMIDs of records PubMed has not deleted, as an index. ``deleted_at`` is the last
    column of ``records``, after the record's XML (19 KB on average, mostly in overflow
    pages): a query filtering on it walked every record's XML, so counting or scanning the
    live records cost time and I/O in proportion to the XML held (40,000 records: 0.25 s
    hot, a gigabyte read cold, for the labelling check after each search)."""
    db.execute("CREATE INDEX records_live ON records (pmid) WHERE deleted_at IS NULL")


def _script(db: sqlite3.Connection, sql: str) -> None:
    """Run statements one by one: ``executescript`` would commit the open transaction."""
    for statement in sql.split(";"):
        if statement.strip():
            db.execute(statement)


def migrate(db: sqlite3.Connection) -> list[str]:
    """Apply pending migrations, each in one transaction; return the names applied.

    The connection must be in autocommit mode (``isolation_level=None``). Whether a
    migration is pending is decided inside its write transaction, so two processes opening
    a new library at once never run the same migration twice.
    """
    db.execute("CREATE TABLE IF NOT EXISTS _migrations (name TEXT PRIMARY KEY, applied TEXT)")
    applied = []
    for fn in MIGRATIONS:
        db.execute("BEGIN IMMEDIATE")
        try:
            done = db.execute("SELECT 1 FROM _migrations WHERE name = ?",
                              (fn.__name__,)).fetchone()
            if not done:
                fn(db)
                db.execute("INSERT INTO _migrations VALUES (?, ?)",
                           (fn.__name__, datetime.now(UTC).isoformat(timespec="seconds")))
                applied.append(fn.__name__)
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")
    return applied
