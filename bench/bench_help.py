"""Start-up cost of ``kratomlit --help``: median wall and CPU time of N runs, and instructions.

Usage:
    python bench/bench_help.py [--runs 11] [--instructions auto|perf|valgrind|none]

Each case runs in its own process the way the installed ``kratomlit`` script does (the
``[project.scripts]`` entry point of ``pyproject.toml``), with this checkout first on
``PYTHONPATH`` and its bytecode compiled once beforehand (an installed package has its
``.pyc`` files; ``PYTHONDONTWRITEBYTECODE`` would otherwise charge every run for compiling).
``python -c pass`` and ``import typer`` are the floor: interpreter start-up (with this
machine's ``site`` and ``.pth`` files) and the CLI library alone.

Wall time is noisy on a shared machine, so the table also gives the median CPU time (user +
system, ``os.wait4``) and, where available, instructions: ``perf stat -e instructions:u``,
or one run under ``valgrind --tool=cachegrind`` (about 50x slower, but the count does not
depend on the load; ``PYTHONHASHSEED=0`` keeps it repeatable).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import time
import tomllib
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
Counter = Callable[[list[str], dict[str, str]], "int | None"]


def entry_code(entry: str | None = None) -> str:
    """The console script's body for ``module:function`` (default: pyproject's
    ``[project.scripts] kratomlit``)."""
    if entry is None:
        scripts = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]
        entry = scripts["kratomlit"]
    module, func = entry.split(":")
    return (f"import sys; from {module} import {func}; sys.argv[0] = 'kratomlit'; "
            f"sys.exit({func}())")


def cases() -> dict[str, list[str]]:
    kratomlit = [sys.executable, "-c", entry_code()]
    through_typer = [sys.executable, "-c", entry_code("kratomlit.cli:main")]
    return {
        "`python -c pass` (interpreter start)": [sys.executable, "-c", "pass"],
        "`python -c 'import typer'`": [sys.executable, "-c", "import typer"],
        "`kratomlit --help`": [*kratomlit, "--help"],
        "`kratomlit --help` through Typer (`kratomlit.cli:main`)": [*through_typer, "--help"],
        "`kratomlit search --help`": [*kratomlit, "search", "--help"],
    }


def environment() -> dict[str, str]:
    env = dict(os.environ, PYTHONHASHSEED="0", COLUMNS="100")
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH")) if p)
    return env


def timed(cmd: list[str], env: dict[str, str]) -> tuple[float, float]:
    """(wall, user + system CPU) seconds of one run."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _pid, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{cmd} failed: {proc.stderr.read().decode() if proc.stderr else ''}")
    return wall, usage.ru_utime + usage.ru_stime


def perf_instructions(cmd: list[str], env: dict[str, str]) -> int | None:
    out = subprocess.run(["perf", "stat", "-x,", "-e", "instructions:u", *cmd], env=env,
                         capture_output=True, text=True, check=False).stderr
    for line in out.splitlines():
        value = line.split(",")[0]
        if "instructions" in line and value.isdigit():
            return int(value)
    return None


def valgrind_instructions(cmd: list[str], env: dict[str, str]) -> int | None:
    out = subprocess.run(["valgrind", "--tool=cachegrind", "--cache-sim=no",
                          "--cachegrind-out-file=/dev/null", *cmd], env=env,
                         capture_output=True, text=True, check=False).stderr
    found = re.search(r"I\s+refs:\s+([\d,]+)", out)
    return int(found.group(1).replace(",", "")) if found else None


def counter(choice: str, env: dict[str, str]) -> tuple[str, Counter] | None:
    """The first instruction counter that works here (perf needs hardware counters)."""
    probe = [sys.executable, "-c", "pass"]
    if choice in ("auto", "perf") and shutil.which("perf") and perf_instructions(probe, env):
        return "perf stat -e instructions:u", perf_instructions
    if choice in ("auto", "valgrind") and shutil.which("valgrind"):
        return "valgrind --tool=cachegrind (I refs)", valgrind_instructions
    return None


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=11)
    ap.add_argument("--instructions", choices=("auto", "perf", "valgrind", "none"),
                    default="auto")
    args = ap.parse_args()
    env = environment()
    compile_env = {k: v for k, v in env.items() if k != "PYTHONDONTWRITEBYTECODE"}
    for cmd in cases().values():  # write the .pyc files an installed package would have
        timed(cmd, compile_env)
    count = counter(args.instructions, env)
    print(f"{args.runs} runs each, Python {sys.version.split()[0]}, {os.cpu_count()} CPUs; "
          f"instructions: {count[0] if count else 'not measured'}\n")
    print("| command | wall median | wall min | CPU median | instructions |\n"
          "| --- | ---: | ---: | ---: | ---: |")
    for name, cmd in cases().items():
        walls, cpus = zip(*(timed(cmd, env) for _ in range(args.runs)), strict=True)
        instr = count[1](cmd, env) if count else None
        print(f"| {name} | {statistics.median(walls):.3f} s | {min(walls):.3f} s | "
              f"{statistics.median(cpus):.3f} s | "
              f"{f'{instr / 1e6:.1f} M' if instr else '-'} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
