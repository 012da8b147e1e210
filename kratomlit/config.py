"""Settings, resolved once per command: option > environment > config file > default.

The config file is ``config.toml`` inside ``KRATOMLIT_HOME`` (or the file named by
``KRATOMLIT_CONFIG``). Nothing here runs at import time.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import platformdirs

from kratomlit.errors import UsageError

DEFAULT_EUTILS_URL = "https://eutils.ncbi.nlm.nih.gov/entrez/eutils/"
TOOL_NAME = "kratomlit"

# setting name -> environment variable (EDirect's names for the NCBI ones)
ENV_NAMES = {
    "home": "KRATOMLIT_HOME",
    "eutils_url": "KRATOMLIT_EUTILS_URL",
    "email": "NCBI_EMAIL",
    "api_key": "NCBI_API_KEY",
    "timeout": "KRATOMLIT_TIMEOUT",
    "max_tries": "KRATOMLIT_MAX_TRIES",
    "max_response_mb": "KRATOMLIT_MAX_RESPONSE_MB",
}
MAX_TIMEOUT_S = 3600.0  # an hour per read; larger values overflow the socket timeout
MAX_TRIES_LIMIT = 50  # past this a failing NCBI is not coming back within one run
# A 500-record EFetch answer is about 5 MB; 100 MB leaves room for records with huge
# abstracts while a decompression bomb (2 MB of gzip, 2 GB of XML) stops at 100 MB.
DEFAULT_MAX_RESPONSE_MB = 100
MAX_RESPONSE_MB_LIMIT = 4096
FILE_KEYS = {"eutils_url", "email", "api_key", "timeout", "max_tries", "max_response_mb"}


@dataclass(frozen=True)
class Settings:
    """Everything a command needs to know about its environment."""

    home: Path
    eutils_url: str = DEFAULT_EUTILS_URL
    email: str | None = None
    api_key: str | None = None
    tool: str = TOOL_NAME
    timeout: float = 60.0  # seconds to connect, and to wait for each read of an answer
    max_tries: int = 10  # a burst of 429s and dropped connections must not end a run
    max_response_mb: int = DEFAULT_MAX_RESPONSE_MB  # decompressed size cap of one answer
    config_path: Path | None = None  # the config file read (or that would be read)

    @property
    def library_path(self) -> Path:
        return self.home / "library.db"

    @property
    def cache_path(self) -> Path:
        return self.home / "http_cache.sqlite"

    @property
    def ratelimit_path(self) -> Path:
        return self.home / "ratelimit.sqlite"

    @property
    def log_dir(self) -> Path:
        return self.home / "logs"

    @property
    def user_queries_dir(self) -> Path:
        return self.home / "queries"

    def own_files(self) -> list[Path]:
        """Files kratomlit keeps: no output may be written over them."""
        dbs = [self.library_path, self.cache_path, self.ratelimit_path]
        files = [*dbs, *(p.with_name(p.name + s) for p in dbs for s in ("-wal", "-shm",
                                                                          "-journal"))]
        files += [self.log_dir / "kratomlit.log", self.home / "refresh.lock"]
        return files + ([self.config_path] if self.config_path else [])

    def describe(self) -> dict[str, object]:
        """Where data lives and the settings in force, for ``info`` (never the key)."""
        return {
            "home (KRATOMLIT_HOME)": self.home, "library": self.library_path,
            "HTTP cache": self.cache_path, "rate-limit state": self.ratelimit_path,
            "log": self.log_dir / "kratomlit.log", "your saved searches": self.user_queries_dir,
            "E-utilities URL": self.eutils_url, "email (NCBI_EMAIL)": self.email or "not set",
            "API key (NCBI_API_KEY)": "set" if self.api_key else "not set",
            "request limit": f"{self.requests_per_second}/s",
            "tries per request (KRATOMLIT_MAX_TRIES)": self.max_tries,
            "timeout (KRATOMLIT_TIMEOUT)": f"{self.timeout:g} s",
            "largest answer (KRATOMLIT_MAX_RESPONSE_MB)": f"{self.max_response_mb} MB"}

    @property
    def max_response_bytes(self) -> int:
        return self.max_response_mb * 1024 * 1024

    @property
    def requests_per_second(self) -> int:
        """NCBI's limit: 3 requests/s per IP without a key, 10 with one."""
        return 10 if self.api_key else 3


def default_home() -> Path:
    """The per-user data folder (e.g. ``~/.local/share/kratomlit`` on Linux)."""
    return Path(platformdirs.user_data_dir(TOOL_NAME, appauthor=False))


def load_settings(
    options: Mapping[str, Any] | None = None, env: Mapping[str, str] | None = None
) -> Settings:
    """Resolve settings from CLI options, then environment, then config file, then defaults."""
    options = {k: v for k, v in (options or {}).items() if v not in (None, "")}
    env = os.environ if env is None else env
    from_env: dict[str, Any] = {k: env[v] for k, v in ENV_NAMES.items() if env.get(v)}
    from_env.update(_env_numbers(from_env))
    home = Path(options.get("home") or from_env.get("home") or default_home()).expanduser()
    named = env.get("KRATOMLIT_CONFIG")
    if named and not Path(named).is_file():
        raise UsageError(f"KRATOMLIT_CONFIG names {named}, which is not a file.")
    config_path = Path(named or home / "config.toml")
    from_file = _read_config_file(config_path)
    _check_types(from_file, config_path)
    _check_patience(options, "--timeout", "--max-tries", "--max-response-mb")
    merged: dict[str, Any] = {**from_file, **from_env, **options, "home": home,
                              "config_path": config_path}
    merged["eutils_url"] = _normalise_url(str(merged.get("eutils_url") or DEFAULT_EUTILS_URL))
    return Settings(**{k: v for k, v in merged.items() if k in Settings.__dataclass_fields__})


def _read_config_file(path: Path) -> dict[str, Any]:
    if not path.is_file():
        return {}
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise UsageError(f"Config file {path} is not valid TOML: {exc}. Fix or remove it.") from exc
    except OSError as exc:
        raise UsageError(f"Config file {path} cannot be read: {exc.strerror or exc}.") from exc
    unknown = set(data) - FILE_KEYS
    if unknown:
        raise UsageError(
            f"Config file {path} has unknown keys: {', '.join(sorted(unknown))}. "
            f"Known keys: {', '.join(sorted(FILE_KEYS))}."
        )
    return data


def _check_types(data: dict[str, Any], path: Path) -> None:
    """Config values of the wrong type fail here, with the file named, not deep inside."""
    for key in ("eutils_url", "email", "api_key"):
        if key in data and not isinstance(data[key], str):
            raise UsageError(f"Config file {path}: {key} must be a string.")
    _check_patience(data, *(f"Config file {path}: {k}"
                            for k in ("timeout", "max_tries", "max_response_mb")))


def _check_patience(data: Mapping[str, Any], timeout_name: str, tries_name: str,
                    size_name: str) -> None:
    """``timeout`` (seconds > 0), ``max_tries`` (1-50) and ``max_response_mb`` (1-4096),
    wherever they were set."""
    timeout = data.get("timeout", 1.0)
    if isinstance(timeout, bool) or not isinstance(timeout, int | float) \
            or not 0 < timeout <= MAX_TIMEOUT_S:  # also refuses nan and inf
        raise UsageError(f"{timeout_name} must be a number of seconds above 0 and at most "
                         f"{MAX_TIMEOUT_S:g}.")
    tries = data.get("max_tries", 1)
    if isinstance(tries, bool) or not isinstance(tries, int) or not 1 <= tries <= MAX_TRIES_LIMIT:
        raise UsageError(f"{tries_name} must be a whole number from 1 to {MAX_TRIES_LIMIT}.")
    size = data.get("max_response_mb", 1)
    if isinstance(size, bool) or not isinstance(size, int) \
            or not 1 <= size <= MAX_RESPONSE_MB_LIMIT:
        raise UsageError(f"{size_name} must be a whole number of megabytes from 1 to "
                         f"{MAX_RESPONSE_MB_LIMIT}.")


def _env_numbers(from_env: Mapping[str, Any]) -> dict[str, Any]:
    """KRATOMLIT_TIMEOUT, KRATOMLIT_MAX_TRIES and KRATOMLIT_MAX_RESPONSE_MB as numbers,
    checked like the file's."""
    out: dict[str, Any] = {}
    for key, kind in (("timeout", float), ("max_tries", int), ("max_response_mb", int)):
        if key in from_env:
            try:
                out[key] = kind(str(from_env[key]).strip())
            except ValueError:
                out[key] = str(from_env[key])  # refused by the check below, with its name
    _check_patience(out, ENV_NAMES["timeout"], ENV_NAMES["max_tries"],
                    ENV_NAMES["max_response_mb"])
    return out


def _normalise_url(url: str) -> str:
    """The E-utilities URL, checked here so that a typo is a usage error at once rather
    than a request error retried for minutes."""
    check = "(check KRATOMLIT_EUTILS_URL, --eutils-url or eutils_url in the config file)"
    if not url.startswith(("http://", "https://")):
        raise UsageError(f"E-utilities URL {url!r} must start with http:// or https:// {check}.")
    problem = _url_problem(url)
    if problem:
        raise UsageError(f"E-utilities URL {url!r} is not usable: {problem} {check}.")
    return url if url.endswith("/") else url + "/"


def _url_problem(url: str) -> str:
    """What makes ``url`` unusable as a base URL, or ``""``."""
    if any(c.isspace() or ord(c) < 32 or ord(c) == 127 for c in url):
        return "it contains spaces or control characters"
    parts = urlsplit(url)
    try:
        parts.port  # noqa: B018  (raises ValueError for a port that is not 0-65535)
    except ValueError:
        return "the port is not a number from 1 to 65535"
    if parts.port == 0:
        return "the port is not a number from 1 to 65535"
    if not parts.hostname:
        return "it names no host"
    if parts.query or parts.fragment:
        return "a base URL has no ?query or #fragment"
    if parts.username is not None or parts.password is not None:
        return "credentials in the URL would be sent with every request"
    return ""
