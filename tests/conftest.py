"""Shared fixtures.

* ``server``: a real E-utilities HTTP server on 127.0.0.1 (tests/eutils_server.py); put
  records and search terms in ``server.state`` and faults in ``server.state.faults``.
* ``env``: an isolated KRATOMLIT_HOME pointed at that server, with an API key so the
  limiter allows 10 requests/s (tests that check the 3/s limit drop the key).
* ``cli``: run the real Typer app in-process; returns the click Result.
* ``shared``: the path of ../shared, or a skip when it is absent (fresh clones).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from kratomlit import eutils
from kratomlit.cli import app
from tests.eutils_server import EUtilsServer, fixture_docs

SHARED = Path(__file__).resolve().parents[1].parent / "shared"


@pytest.fixture
def server() -> Iterator[EUtilsServer]:
    with EUtilsServer().running() as srv:
        yield srv


@pytest.fixture
def kratom_server(server: EUtilsServer) -> EUtilsServer:
    """The server holding the four hand-written records under the term 'kratom'."""
    server.state.add_docs(fixture_docs(), term="kratom")
    return server


@pytest.fixture
def env(tmp_path: Path, server: EUtilsServer, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    home = tmp_path / "home"
    values = {"KRATOMLIT_HOME": str(home), "KRATOMLIT_EUTILS_URL": server.url,
              "NCBI_EMAIL": "tests@example.org", "NCBI_API_KEY": "test-key"}
    for key, value in values.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("KRATOMLIT_CONFIG", raising=False)
    monkeypatch.setattr(eutils, "BACKOFF_BASE_S", 0.01)  # keep retry tests fast
    return values


@pytest.fixture
def cli(env: dict[str, str]) -> Callable[..., object]:
    runner = CliRunner()

    def run(*args: str, **kwargs: object) -> object:
        return runner.invoke(app, list(args), catch_exceptions=False, **kwargs)

    return run


@pytest.fixture
def shared() -> Path:
    if not SHARED.is_dir():
        pytest.skip("../shared is not beside this checkout")
    return SHARED
