"""Every command has help text and a README section with an example; logs keep secrets out."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.main import get_command

from kratomlit.cli import app

README = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
COMMANDS = list(get_command(app).commands)  # the names click resolves, commands unbuilt


def test_every_command_is_listed():
    assert {"search", "export", "list", "eval", "about"} <= set(COMMANDS)


@pytest.mark.parametrize("name", COMMANDS)
def test_command_documented(name, cli):
    assert f"### `kratomlit {name}" in README
    assert f"kratomlit {name}" in README.split(f"### `kratomlit {name}")[1].split("```sh")[1]
    result = cli(name, "--help")
    assert result.exit_code == 0 and "Example:" in result.stdout


def test_help_mentions_disclaimer(cli):
    assert "disclaimer" in cli("--help").stdout


def test_log_file_has_requests_but_no_secrets(cli, kratom_server, env):
    assert cli("search", "kratom").exit_code == 0
    log = (Path(env["KRATOMLIT_HOME"]) / "logs" / "kratomlit.log").read_text()
    assert "esearch.fcgi term='kratom'" in log and "efetch.fcgi (4 PMIDs)" in log
    assert env["NCBI_API_KEY"] not in log and env["NCBI_EMAIL"] not in log


def test_log_records_failures_and_retries(cli, kratom_server, env):
    kratom_server.state.faults = {"efetch": ["html200", "500"]}
    assert cli("search", "kratom").exit_code == 0
    log = (Path(env["KRATOMLIT_HOME"]) / "logs" / "kratomlit.log").read_text()
    assert "efetch.fcgi failed (try 1 of 10): unreadable answer" in log
    assert "efetch.fcgi failed (try 2 of 10): HTTP 500" in log
    assert log.count("retrying efetch.fcgi") == 2
