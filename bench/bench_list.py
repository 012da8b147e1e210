"""Time and peak memory of the browsing commands (``list``, ``show``, ``searches``).

Usage:
    python bench/bench_list.py [--sizes 10000,100000] [--work DIR]

Builds a classified library per size with ``bench_export.py``'s builder (synthetic records
shaped like real PubMed ones), then runs each command through the real CLI in its own
process and reads its wall time and peak RSS (``os.wait4``). ``list`` reads every selected
record (export's chunked selection) and keeps only the rows it prints, so its memory should
grow with the rows kept, not with the records read: ``--limit 20`` stays near flat.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CASES = {
    "list --limit 20": ["list", "--limit", "20"],
    "list --topic safety --limit 20": ["list", "--topic", "safety", "--limit", "20"],
    "list --format csv (every row)": ["list", "--format", "csv"],
    "show PMID": ["show", "10000005"],
    "searches": ["searches"],
}


def run(home: Path, args: list[str]) -> tuple[float, float, int]:
    cmd = [sys.executable, str(REPO / "cli.py"), "--home", str(home), *args]
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _pid, status, usage = os.wait4(proc.pid, 0)
    return (time.perf_counter() - start, usage.ru_maxrss / 1024,
            os.waitstatus_to_exitcode(status))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", default="10000,100000")
    ap.add_argument("--work", type=Path)
    args = ap.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="kratomlit-bench-list-"))
    print("| command | records | wall | peak RSS |\n| --- | ---: | ---: | ---: |")
    for n in (int(x) for x in args.sizes.split(",")):
        home = work / f"lib{n}"
        if not (home / "library.db").exists():
            subprocess.run([sys.executable, str(REPO / "bench" / "bench_export.py"), "--build",
                            str(n), str(home)], check=True)
        for name, cmd in CASES.items():
            wall, rss, code = run(home, cmd)
            status = "" if code == 0 else f" (exit {code})"
            print(f"| `{name}` | {n:,} | {wall:.2f} s | {rss:.0f} MiB{status} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
