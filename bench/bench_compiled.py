"""What compiling the classifier and the extractor would buy: both benchmarks on a compiled copy.

Usage:
    python bench/bench_compiled.py [--data PATH] [--rounds R] [--keep]

Copies the package, its data and ``bench/`` to a temporary folder, compiles the modules the
two speed targets depend on (``classify``, ``extract``, ``sample_size``, ``doses``) with
Cython as they are (no type declarations, no code changes), and runs ``bench_classify.py``
and ``bench_extract.py`` there, then the same two on this checkout, so the two sets of figures
come from the same minutes. It answers two questions with measurements: how far compiling
the code unchanged takes ``classify().to_dict()`` towards 20,000/s (issue 12), and whether it
changes extraction's share of classification time (issue 13: at most +50 %). Nothing here is
shipped: kratomlit stays pure Python. Needs Cython (``pip install cython``) and a C compiler;
exits 0 with a message when either, or the dev data, is missing.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO.parent / "shared" / "data" / "kratom_dev.jsonl"
COMPILED = ("classify", "extract", "sample_size", "doses")
BUILD = """\
from Cython.Build import cythonize
from setuptools import setup
setup(ext_modules=cythonize({modules!r}, compiler_directives={{"language_level": 3}},
                            quiet=True), script_args=["build_ext", "--inplace", "-q"])
"""


def _copy(to: Path) -> None:
    for name in ("kratomlit", "data", "bench", "queries"):
        shutil.copytree(REPO / name, to / name,
                        ignore=shutil.ignore_patterns("__pycache__", "*.so", "*.c"))


def _compile(root: Path) -> str | None:
    """Build the extension modules in place; returns why not, or None."""
    modules = [f"kratomlit/{name}.py" for name in COMPILED]
    (root / "build_ext.py").write_text(BUILD.format(modules=modules), encoding="utf-8")
    done = subprocess.run([sys.executable, "build_ext.py"], cwd=root, capture_output=True,
                          text=True)
    if done.returncode != 0:
        return done.stderr.strip().splitlines()[-1] if done.stderr.strip() else "build failed"
    built = sorted(p.name for p in (root / "kratomlit").glob("*.so"))
    if len(built) != len(COMPILED):
        return f"expected {len(COMPILED)} compiled modules, found {built}"
    return None


def _run(root: Path, script: str, data: Path, rounds: int) -> None:
    env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1")
    subprocess.run([sys.executable, str(root / "bench" / script), "--data", str(data),
                    "--rounds", str(rounds)], cwd=root, env=env, check=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--keep", action="store_true", help="keep the compiled copy")
    args = parser.parse_args(argv)
    if not args.data.is_file():
        print(f"skipped: dev data not found at {args.data} (pass --data PATH)")
        return 0
    try:
        import Cython  # noqa: F401
    except ImportError:
        print("skipped: Cython is not installed (pip install cython)")
        return 0
    root = Path(tempfile.mkdtemp(prefix="kratomlit-compiled-"))
    try:
        _copy(root)
        problem = _compile(root)
        if problem is not None:
            print(f"skipped: could not compile ({problem})")
            return 0
        for where, label in ((root, f"compiled copy ({', '.join(COMPILED)})"),
                             (REPO, "this checkout (pure Python)")):
            for script in ("bench_classify.py", "bench_extract.py"):
                print(f"\n== {label}: {script}", flush=True)
                _run(where, script, args.data.resolve(), args.rounds)
    finally:
        if args.keep:
            print(f"\ncompiled copy kept in {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
