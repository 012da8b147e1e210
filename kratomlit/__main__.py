"""The ``kratomlit`` command and ``python -m kratomlit``.

A bare ``kratomlit --help`` prints Typer's own help text, saved in ``help_text.py``, without
importing Typer: Typer alone costs more start-up than the 0.15 s --help budget. Every other
run, and --help whenever that text might differ from what Typer would print (a narrower
terminal, another Typer version, a completion request), goes through ``kratomlit.cli``.
"""

import os
import sys


def main() -> None:
    """Console-script entry point."""
    text = static_help(sys.argv[1:])
    if text is not None:
        try:
            sys.stdout.write(text)
            sys.stdout.flush()
        except (BrokenPipeError, OSError, AttributeError, ValueError):
            pass  # stdout closed or a pipe gone (kratomlit --help | head): as Typer, no error
        return
    from kratomlit.cli import main as cli_main

    skip_the_last_collection()
    cli_main()


def skip_the_last_collection() -> None:
    """At exit the interpreter runs the cyclic garbage collector over every object still
    alive (the libraries, the classifier, the lexicons) before tearing modules down: 60 ms
    of a command's run, for memory the OS takes back anyway. ``gc.freeze`` at exit moves
    them out of its sight. Registered first, so it runs after every other exit handler
    (logging's flush, multiprocessing's clean-up); no file is left unflushed."""
    import atexit
    import gc

    atexit.register(gc.freeze)


def static_help(args: list[str]) -> str | None:
    """The saved help if Typer would print exactly it for these arguments, else None."""
    if args not in (["--help"], ["-h"]):
        return None
    if "_KRATOMLIT_COMPLETE" in os.environ or "_TYPER_COMPLETE_TEST_DISABLE_SHELL_DETECTION" in \
            os.environ:  # shell completion, or Typer's completion options read differently
        return None
    import shutil

    if shutil.get_terminal_size().columns < 80:  # click wraps at min(columns, 80) - 2
        return None
    from kratomlit import help_text

    return help_text.HELP if typer_version() == help_text.TYPER_VERSION else None


def typer_version() -> str | None:
    """Typer's ``__version__`` read from its source: importing it is what this avoids, and
    importlib.metadata costs nearly as much."""
    from importlib.util import find_spec

    spec = find_spec("typer")
    if spec is None or spec.origin is None:
        return None
    try:
        with open(spec.origin, encoding="utf-8") as source:
            for line in source:
                if line.startswith("__version__"):
                    return line.partition("=")[2].strip().strip("\"'")
    except (OSError, UnicodeDecodeError):  # a .pyc-only install: let Typer answer
        return None
    return None


if __name__ == "__main__":
    main()
