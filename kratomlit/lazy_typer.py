"""A Typer app that turns a command into a click command only when that command is used.

Typer builds every command's click parameters (signature, annotations, defaults) each time
the app starts: 31 M instructions for kratomlit's 14 commands, though a run uses one of them
and ``kratomlit --help`` none (it lists each name with the start of its docstring).

Also the generator of ``help_text.py``, the top-level ``--help`` that ``__main__`` prints
without importing Typer: ``python -m kratomlit.lazy_typer`` rewrites it from Typer's output.
"""

import inspect
import os
import subprocess
import sys
from collections.abc import Callable, Iterator, Mapping, MutableMapping
from pathlib import Path
from typing import Any, TypeVar, cast

import typer
from typer.core import TyperCommand, TyperGroup
from typer.main import get_command_from_info, get_command_name
from typer.models import CommandInfo

F = TypeVar("F", bound=Callable[..., Any])
Command = Any  # click.Command: typer>=0.2x vendors click, older typer uses the click package


class LazyCommands(MutableMapping[str, Command]):
    """A group's commands by name, in registration order; a command is built on first lookup."""

    def __init__(self, infos: list[CommandInfo], build: Callable[[CommandInfo], Command],
                 built: Mapping[str, Command]) -> None:
        self._build = build
        self._entries: dict[str, CommandInfo | Command] = {_name(i): i for i in infos}
        self._entries.update(built)  # sub-apps (add_typer) come built and after, as in Typer

    def __getitem__(self, name: str) -> Command:
        entry = self._entries[name]
        if isinstance(entry, CommandInfo):
            entry = self._entries[name] = self._build(entry)
        return entry

    def peek(self, name: str) -> Command:
        """The built command, or a parameterless stand-in with the same help: enough to list it."""
        entry = self._entries[name]
        return _stand_in(name, entry) if isinstance(entry, CommandInfo) else entry

    def built(self) -> list[str]:
        """Names of the commands built so far."""
        return [n for n, e in self._entries.items() if not isinstance(e, CommandInfo)]

    def __contains__(self, name: object) -> bool:
        return name in self._entries  # Mapping's would build the command to find out

    def __setitem__(self, name: str, command: Command) -> None:
        self._entries[name] = command

    def __delitem__(self, name: str) -> None:
        del self._entries[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)


def _name(info: CommandInfo) -> str:
    assert info.callback is not None, "a command needs a callback"
    return info.name or get_command_name(info.callback.__name__)


def _stand_in(name: str, info: CommandInfo) -> Command:
    """The help fields exactly as ``typer.main.get_command_from_info`` sets them."""
    help_text = (inspect.getdoc(info.callback) if info.help is None
                 else inspect.cleandoc(info.help))
    return (info.cls or TyperCommand)(name=name, help=help_text, short_help=info.short_help,
                                      hidden=info.hidden, deprecated=info.deprecated)


class LazyGroup(TyperGroup):
    """The click group of a LazyTyper: its ``commands`` is the app's LazyCommands."""

    app: "LazyTyper"  # set on the per-app subclass LazyTyper makes

    def __init__(self, **attrs: Any) -> None:
        super().__init__(**attrs)
        self.commands = LazyCommands(self.app.lazy_commands, self._build, self.commands)
        self._listing = False

    def _build(self, info: CommandInfo) -> Command:
        return get_command_from_info(info, pretty_exceptions_short=self.app.pretty_exceptions_short,
                                     rich_markup_mode=self.app.rich_markup_mode)

    def list_commands(self, ctx: Any) -> list[str]:
        return list(self.commands)  # names only: TyperGroup's reads every command

    def get_command(self, ctx: Any, cmd_name: str) -> Command | None:
        if cmd_name not in self.commands:
            return None
        commands = cast(LazyCommands, self.commands)
        return commands.peek(cmd_name) if self._listing else commands[cmd_name]

    def format_commands(self, ctx: Any, formatter: Any) -> None:
        """Typer's listing, fed with stand-ins for the commands not built."""
        self._listing = True
        try:
            super().format_commands(ctx, formatter)
        finally:
            self._listing = False


class LazyTyper(typer.Typer):
    """``typer.Typer`` whose commands are built on use. It needs a callback (a group)."""

    def __init__(self, **kwargs: Any) -> None:
        self.lazy_commands: list[CommandInfo] = []
        group = type("LazyGroup", (LazyGroup,), {"app": self})
        super().__init__(cls=group, **kwargs)

    def command(self, *args: Any, **kwargs: Any) -> Callable[[F], F]:
        """Typer's decorator, keeping the command out of Typer's build-everything list."""
        register = super().command(*args, **kwargs)

        def decorator(f: F) -> F:
            register(f)
            self.lazy_commands.append(self.registered_commands.pop())
            return f

        return decorator


HELP_MODULE = Path(__file__).with_name("help_text.py")
HELP_WIDTH_COLUMNS = "100"  # any terminal of 80+ columns: click then wraps at 78


def typer_help() -> str:
    """What ``kratomlit --help`` prints through Typer (``kratomlit.cli.main``), 80+ columns."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("_KRATOMLIT_COMPLETE", "_TYPER_COMPLETE_TEST_DISABLE_SHELL_DETECTION")}
    env["COLUMNS"] = HELP_WIDTH_COLUMNS
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(Path(__file__).parents[1]),
                                                      env.get("PYTHONPATH")]))
    done = subprocess.run([sys.executable, "-c", "from kratomlit.cli import main; main()",
                           "--help"], env=env, capture_output=True, text=True, check=True)
    return done.stdout


def help_module_source(text: str) -> str:
    """help_text.py: the text as a plain triple-quoted string, so a diff reads like the help."""
    if '"""' in text or "\\" in text or not text.isascii():  # __main__ writes it as is
        raise ValueError("the help needs quoting or a non-ASCII stdout: extend this writer")
    return (f'"""Generated by ``python -m kratomlit.lazy_typer`` from Typer {typer_version()}\'s '
            "``kratomlit --help``:\nwhat ``__main__`` prints without importing Typer. "
            'tests/test_cli_lazy.py checks it.\n"""\n\n'
            f"TYPER_VERSION = {typer_version()!r}\n\n"
            f'HELP = """\\\n{text}"""\n')


def typer_version() -> str:
    return str(typer.__version__)


if __name__ == "__main__":
    HELP_MODULE.write_text(help_module_source(typer_help()), encoding="utf-8")
    print(f"wrote {HELP_MODULE}")
