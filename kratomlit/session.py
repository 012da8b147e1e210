"""The HTTP session every E-utilities call goes through: a SQLite cache in front of a limiter
in front of a guarded transport.

Order matters: ``CacheMixin`` answers cache hits before ``LimiterMixin`` is asked for a
token, so only real network requests count against NCBI's limit. The limiter's bucket is
a SQLite file in ``KRATOMLIT_HOME`` guarded by a file lock, because NCBI counts requests
per IP: a cron refresh and an analyst's search running side by side share one budget.
The limiter only spaces requests; what to do about a 429 (back off, honour
``Retry-After``) is the client's one retry policy, so the limiter's own 429 penalty is off.

Only ESearch answers are cached (a repeated search within the hour costs no request);
EFetch answers are not, since the library keeps each record's XML already.

Under both, ``transport.GuardedAdapter`` reads every answer before the cache sees it: at
most ``max_response_mb`` decompressed, within an overall deadline. Redirects are not
followed here: the client follows same-host ones itself (see ``eutils.py``).
"""

from __future__ import annotations

import sqlite3
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import requests
from pyrate_limiter import Limiter, Rate, SQLiteBucket
from requests_cache import DO_NOT_CACHE, CacheMixin, create_key
from requests_ratelimiter import LimiterMixin

from kratomlit import __version__
from kratomlit.config import Settings
from kratomlit.errors import StorageError
from kratomlit.transport import guard

# NCBI counts requests per second as they arrive. With the limiter's 50 ms buffer, any four
# requests span at least 1.15 s: never tighter than Biopython's Bio.Entrez, which spaces
# requests 0.37 s apart (1.11 s for four), and it leaves 150 ms for a request delayed
# between its slot and the wire. Measured against the simulator since EFetch slots are
# taken in order (eutils.RetryTurns): the tightest four arrived 1.117 s apart with both
# cores saturated by other processes, 1.119 s on a quiet machine. A 1.2 s window cost a
# cold 5,000-record search ~0.3 s; a 1.0 s one (+100 ms), tried when the slots were taken
# in any order, let a fourth request into one second in 2 of 6 runs.
RATE_WINDOW_MS = 1100
ESEARCH_EXPIRY = timedelta(hours=1)  # search results change daily; stay fresh within a session
IGNORED_PARAMS = ["api_key", "email", "tool"]  # never part of a cache key, never stored


def cache_key(request: requests.PreparedRequest, **kwargs: Any) -> str:
    """requests-cache's key, computed as if ``api_key``, ``email`` and ``tool`` were never
    sent: its ``ignored_parameters`` only blanks their values, so merely adding an email
    or a key would change every key."""
    stripped = request.copy()
    stripped.url = _strip_query(request.url or "")
    if isinstance(request.body, bytes | str) and request.body:
        body = request.body.decode() if isinstance(request.body, bytes) else request.body
        stripped.body = urlencode([(k, v) for k, v in parse_qsl(body, keep_blank_values=True)
                                   if k not in IGNORED_PARAMS])
    return create_key(stripped, **kwargs)


def _strip_query(url: str) -> str:
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True)
             if k not in IGNORED_PARAMS]
    return urlunsplit(parts._replace(query=urlencode(query)))


class CachedLimiterSession(CacheMixin, LimiterMixin, requests.Session):
    """requests.Session with a requests-cache cache in front of a requests-ratelimiter limiter."""


def make_limiter(settings: Settings) -> Limiter:
    """A limiter whose state lives in a file every kratomlit process on this machine shares."""
    settings.home.mkdir(parents=True, exist_ok=True)
    rate = settings.requests_per_second
    bucket = SQLiteBucket.init_from_file(
        [Rate(rate, RATE_WINDOW_MS)],
        table=f"eutils_{rate}_per_s",
        db_path=str(settings.ratelimit_path),
        use_file_lock=True,
    )
    return Limiter(bucket, buffer_ms=50)


def make_session(settings: Settings) -> CachedLimiterSession:
    """Build the cached, rate-limited session the E-utilities client is given."""
    try:
        return _make_session(settings)
    except (OSError, sqlite3.DatabaseError) as exc:
        raise StorageError(
            f"Cannot use the HTTP cache or rate-limit files in {settings.home}: {exc}. Check "
            "that KRATOMLIT_HOME is a writable folder; a damaged http_cache.sqlite or "
            "ratelimit.sqlite can be deleted (they are rebuilt).") from exc


def _make_session(settings: Settings) -> CachedLimiterSession:
    settings.home.mkdir(parents=True, exist_ok=True)
    session = CachedLimiterSession(
        cache_name=str(settings.cache_path),
        backend="sqlite",
        wal=True,  # a cron refresh and an analyst's search may share the cache
        busy_timeout=60_000,
        expire_after=DO_NOT_CACHE,  # EFetch and anything else: the library keeps records
        urls_expire_after={"*esearch.fcgi*": ESEARCH_EXPIRY},
        allowable_codes=(200,),
        allowable_methods=("GET", "POST"),
        ignored_parameters=IGNORED_PARAMS,  # still used to redact what is stored
        key_fn=cache_key,
        limiter=make_limiter(settings),
        per_host=False,
        bucket_name="eutils",
        limit_statuses=(),  # a 429 is the client's to handle (backoff, Retry-After), once
    )
    guard(session, settings.max_response_bytes)
    session.headers["User-Agent"] = f"{settings.tool}/{__version__} (python-requests)"
    return session
