"""Expected failures end in one line and a distinct exit code, never a traceback."""

from __future__ import annotations

from pathlib import Path

import pytest


def _home(env) -> Path:
    home = Path(env["KRATOMLIT_HOME"])
    home.mkdir(parents=True, exist_ok=True)
    return home


@pytest.mark.parametrize("name", ["http_cache.sqlite", "ratelimit.sqlite", "library.db"])
def test_damaged_files_in_home_are_storage_errors(cli, env, kratom_server, name):
    (_home(env) / name).write_bytes(b"this is not a database" * 100)
    result = cli("search", "kratom")
    assert result.exit_code == 5, result.stderr
    assert name in result.stderr or "KRATOMLIT_HOME" in result.stderr
    assert "Traceback" not in result.stderr


def test_home_that_is_a_file(cli, env, tmp_path, monkeypatch):
    blocker = tmp_path / "plainfile"
    blocker.write_text("x")
    monkeypatch.setenv("KRATOMLIT_HOME", str(blocker))
    result = cli("search", "kratom")
    assert result.exit_code == 5 and "KRATOMLIT_HOME" in result.stderr


@pytest.mark.parametrize("text,needle", [
    ('timeout = "x"', "timeout"), ("timeout = -1", "timeout"), ('max_tries = "3"', "max_tries"),
    ('email = ["a"]', "email"),
])
def test_config_values_of_the_wrong_type(cli, env, text, needle):
    (_home(env) / "config.toml").write_text(text)
    result = cli("search", "kratom")
    assert result.exit_code == 2 and needle in result.stderr


def test_missing_named_config_file(cli, env, monkeypatch, tmp_path):
    monkeypatch.setenv("KRATOMLIT_CONFIG", str(tmp_path / "nope.toml"))
    result = cli("info")
    assert result.exit_code == 2 and "KRATOMLIT_CONFIG" in result.stderr


def test_export_before_any_search(cli, env, tmp_path):
    result = cli("export", "-o", str(tmp_path / "x.csv"))
    assert result.exit_code == 2 and "kratomlit search" in result.stderr
    assert not (Path(env["KRATOMLIT_HOME"]) / "library.db").exists()


def test_a_broken_user_query_does_not_disable_the_others(cli, env, kratom_server):
    folder = _home(env) / "queries"
    folder.mkdir()
    (folder / "broken.toml").write_text("term = ")
    listing = cli("queries")
    assert listing.exit_code == 0 and "broken.toml" in listing.stderr
    assert "kratom-oud" in listing.stdout
    missing = cli("search", "--saved", "broken")
    assert missing.exit_code == 2 and "broken.toml" in missing.stderr


def test_ancient_dates_are_refused(cli, env):
    assert cli("search", "kratom", "--mindate", "0001").exit_code == 2


def test_a_global_option_after_the_command_gets_a_hint():
    import subprocess
    import sys

    from kratomlit.cli import misplaced_global

    assert misplaced_global(["search", "x", "--home", "h"]) == "--home"
    assert misplaced_global(["--home", "search", "search", "x"]) is None  # a value, not a command
    assert misplaced_global(["--max-tries=3", "refresh", "--wait", "1"]) is None
    done = subprocess.run([sys.executable, "-m", "kratomlit", "info", "--home", "/tmp/x"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "put it before the command" in done.stderr
