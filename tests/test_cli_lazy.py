"""``kratomlit --help`` stays cheap and says exactly what Typer would say.

Two shortcuts are checked against plain Typer: LazyTyper lists commands without building them,
and ``__main__`` prints the saved ``help_text.py`` without importing Typer at all.
"""

from __future__ import annotations

import copy
import os
import subprocess
import sys
from pathlib import Path

import pytest
import typer
from typer.core import TyperGroup
from typer.main import get_command
from typer.testing import CliRunner

import kratomlit.__main__ as entry
from kratomlit import help_text
from kratomlit.cli import app
from kratomlit.lazy_typer import LazyGroup, typer_help

ROOT = Path(__file__).resolve().parents[1]
TYPER_MAIN = "from kratomlit.cli import main; main()"
FAST_MAIN = "from kratomlit.__main__ import main; main()"
HEAVY = {"requests", "pandas", "lxml", "Bio", "pyarrow", "sqlite3", "kratomlit.store",
         "kratomlit.config", "kratomlit.search"}


def eager_app() -> typer.Typer:
    """The same app as plain Typer builds it: every command up front, TyperGroup's listing."""
    plain = copy.copy(app)
    plain.registered_commands = list(app.lazy_commands)
    plain.info = copy.copy(app.info)
    plain.info.cls = TyperGroup
    return plain


def run(code: str, *args: str, columns: str = "100", **env: str) -> subprocess.CompletedProcess:
    environ = {k: v for k, v in os.environ.items() if k != "_KRATOMLIT_COMPLETE"}
    environ.update(COLUMNS=columns, PYTHONPATH=str(ROOT), **env)
    return subprocess.run([sys.executable, "-c", code, *args], env=environ, capture_output=True,
                          text=True, timeout=60, check=False)


def loaded_by(code: str, *args: str, columns: str = "100") -> set[str]:
    probe = "import sys, atexit; atexit.register(lambda: print(*sys.modules, file=sys.stderr))\n"
    result = run(probe + code, *args, columns=columns)
    assert result.returncode == 0, result.stderr
    return set(result.stderr.split())


def test_lazy_listing_is_typers_listing():
    eager = CliRunner().invoke(eager_app(), ["--help"], terminal_width=78)
    lazy = CliRunner().invoke(app, ["--help"], terminal_width=78)
    assert eager.exit_code == lazy.exit_code == 0
    assert lazy.stdout == eager.stdout
    assert "eval      Measure the classifier" in lazy.stdout


def test_listing_builds_no_command_and_a_run_builds_one():
    group = get_command(app)
    assert isinstance(group, LazyGroup)
    ctx = group.make_context("kratomlit", ["--home", "x"])
    listed = group.get_help(ctx)
    assert group.commands.built() == []
    for name in group.list_commands(ctx):  # now list the built commands instead
        assert group.get_command(ctx, name).callback is not None  # stand-ins have none
    assert group.commands.built() == group.list_commands(ctx)
    assert group.get_help(ctx) == listed
    fresh = get_command(app)
    with pytest.raises(SystemExit) as done:
        fresh.main(["about"], prog_name="kratomlit")
    assert done.value.code == 0 and fresh.commands.built() == ["about"]


@pytest.mark.parametrize("name", list(get_command(app).commands))
def test_every_command_is_typers_command(name, cli):
    eager = CliRunner().invoke(eager_app(), [name, "--help"])
    lazy = cli(name, "--help")
    assert eager.exit_code == lazy.exit_code == 0
    assert lazy.stdout == eager.stdout and f"Usage: kratomlit {name}" in lazy.stdout


def test_unknown_command_still_suggests_the_nearest(cli):
    result = cli("serach")
    assert result.exit_code == 2 and "Did you mean 'search'" in result.stderr


@pytest.mark.parametrize("flag", ["--help", "-h"])
def test_saved_help_is_what_typer_prints(flag):
    typer_run, fast_run = run(TYPER_MAIN, flag), run(FAST_MAIN, flag)
    assert typer_run.returncode == fast_run.returncode == 0
    assert fast_run.stderr == typer_run.stderr == ""
    assert fast_run.stdout == typer_run.stdout, (
        "kratomlit/help_text.py is out of date: run 'python -m kratomlit.lazy_typer'")


def test_saved_help_is_current():
    assert help_text.HELP == typer_help()
    assert help_text.TYPER_VERSION == typer.__version__ == entry.typer_version()


def test_help_imports_neither_typer_nor_anything_heavy():
    fast = loaded_by(FAST_MAIN, "--help")
    assert "kratomlit.help_text" in fast
    assert not {"typer", "click", "rich"} & fast and not HEAVY & fast
    lazy = loaded_by(TYPER_MAIN, "--help")  # through Typer: still no command module
    assert "typer" in lazy and not HEAVY & lazy


def test_narrow_terminals_and_other_runs_go_through_typer():
    narrow = loaded_by(FAST_MAIN, "--help", columns="60")
    assert "typer" in narrow
    assert run(FAST_MAIN, "--help", columns="60").stdout == run(TYPER_MAIN, "--help",
                                                                  columns="60").stdout
    assert "typer" in loaded_by(FAST_MAIN, "--version")
    assert run(FAST_MAIN, "--version").stdout.startswith("kratomlit ")


def test_saved_help_only_for_the_typer_it_came_from(monkeypatch):
    monkeypatch.setenv("COLUMNS", "100")
    monkeypatch.delenv("_KRATOMLIT_COMPLETE", raising=False)
    monkeypatch.delenv("_TYPER_COMPLETE_TEST_DISABLE_SHELL_DETECTION", raising=False)
    assert entry.static_help(["--help"]) == help_text.HELP
    assert entry.static_help(["--help", "search"]) is None
    assert entry.static_help([]) is None
    monkeypatch.setattr(help_text, "TYPER_VERSION", "0.0.1")
    assert entry.static_help(["--help"]) is None
    monkeypatch.undo()
    monkeypatch.setenv("COLUMNS", "100")
    monkeypatch.setenv("_TYPER_COMPLETE_TEST_DISABLE_SHELL_DETECTION", "1")
    assert entry.static_help(["-h"]) is None


def test_lazy_typer_keeps_sub_apps_and_order():
    from kratomlit.lazy_typer import LazyTyper

    demo, sub = LazyTyper(), typer.Typer()

    @demo.callback()
    def root() -> None:
        """Demo."""

    @demo.command()
    def first_one() -> None:
        """First."""
        print("ran first")

    @sub.command()
    def leaf() -> None:
        """Leaf."""

    demo.add_typer(sub, name="sub", help="A sub-app.")
    assert list(get_command(demo).commands) == ["first-one", "sub"]
    listing = CliRunner().invoke(demo, ["--help"]).stdout
    assert "first-one  First." in listing and "sub        A sub-app." in listing
    assert CliRunner().invoke(demo, ["first-one"]).stdout == "ran first\n"


def test_saved_help_into_a_closed_stdout_is_quiet():
    """`kratomlit --help >&-` or into a pipe that is gone: no traceback, exit 0, as Typer."""
    environ = {**os.environ, "COLUMNS": "100", "PYTHONPATH": str(ROOT)}
    code = ("import sys; sys.argv = ['kratomlit', '--help']\n"
            "from kratomlit.__main__ import main; main()")
    done = subprocess.run([sys.executable, "-c", code], env=environ, stdout=subprocess.DEVNULL,
                          stderr=subprocess.PIPE, text=True, timeout=60,
                          preexec_fn=lambda: os.close(1))
    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr


def test_typer_version_of_an_unreadable_source_is_none(monkeypatch, tmp_path):
    compiled = tmp_path / "typer.pyc"
    compiled.write_bytes(b"\xff\xfe\x00binary")

    class Spec:
        origin = str(compiled)

    monkeypatch.setattr("importlib.util.find_spec", lambda name: Spec())
    assert entry.typer_version() is None


def test_no_progress_bar_import_off_a_terminal():
    """Under cron or a pipe there is no bar to draw: rich.progress is not even imported."""
    code = ("import sys\nfrom kratomlit import render\n"
            "with render.progress_bar('x') as update:\n    update(1, 2)\n"
            "print('rich.progress' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                          text=True, check=True)
    assert done.stdout.strip() == "False" and done.stderr == ""
