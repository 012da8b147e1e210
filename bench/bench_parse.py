"""EFetch parsing throughput and memory: Bio.Entrez.read, the old and the new parser, parse + store.

Builds one efetch answer per size by cloning the 343 real records in
``../shared/ncbi-samples/real-records`` under new PMIDs (NCBI's prolog and DOCTYPE, as
efetch sends them), then runs each step in its own child process on the same bytes:

* ``entrez``: ``Bio.Entrez.read(validate=False)`` alone (what parsing cost before, minus
  kratomlit's own work);
* ``reference``: the Bio.Entrez-based ``parse_pubmed_xml`` kratomlit used before
  (tests/reference_parse.py);
* ``parse``: ``kratomlit.parse.parse_pubmed_xml`` (streaming lxml), all records kept;
* ``stream``: ``iter_pubmed_xml``, each record dropped once built (the memory the parser
  itself needs);
* ``parse_store``: ``parse_pubmed_xml`` + ``Library.save_batch`` in slices of 500 (as a
  search stores) into a new SQLite library;
* ``body``: only reads the answer (the baseline the others' peak RSS includes).

Each child reports its best wall and CPU time over ``--rounds``; the parent reads its peak
RSS from ``os.wait4``. The machine is shared, so records/s is given both by wall time and
by CPU time of the process (steadier when other work competes for the cores).

    python bench/bench_parse.py                     # 500 and 5,000 records, ~4 minutes
    python bench/bench_parse.py --sizes 500 --rounds 2 --no-write
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
REAL = ROOT.parent / "shared" / "ncbi-samples" / "real-records"
CORPUS = ("real_metapub.xml", "real_fatcat.xml")
STEPS = ("body", "entrez", "reference", "parse", "stream", "parse_store")
LABELS = {"body": "read the answer only (baseline)",
          "entrez": "`Bio.Entrez.read(validate=False)` alone",
          "reference": "old `parse_pubmed_xml` (Bio.Entrez)",
          "parse": "new `parse_pubmed_xml` (lxml, streaming)",
          "stream": "new `iter_pubmed_xml`, records dropped as built",
          "parse_store": "new `parse_pubmed_xml` + `Library.save_batch`"}
SECTION = "## EFetch parser: Bio.Entrez vs streaming lxml (`bench/bench_parse.py`)"
_ARTICLE = re.compile(rb"<PubmedArticle>.*?</PubmedArticle>", re.S)
_FIRST_PMID = re.compile(rb"(<MedlineCitation[^>]*>\s*<PMID[^>]*>)\d+")


def build_body(n: int) -> bytes:
    """``n`` real records (cycled) under PMIDs 30,000,000 + i, in NCBI's efetch wrapper."""
    texts = [(REAL / f).read_bytes() for f in CORPUS]
    articles = [m.group(0) for t in texts for m in _ARTICLE.finditer(t)]
    prolog = texts[0].split(b"<PubmedArticleSet>")[0]
    chunks = [_FIRST_PMID.sub(rb"\g<1>%d" % (30_000_000 + i), articles[i % len(articles)],
                              count=1) for i in range(n)]
    return prolog + b"<PubmedArticleSet>\n" + b"\n".join(chunks) + b"\n</PubmedArticleSet>\n"


# ---- child: one step, timed -------------------------------------------------------------

def step_function(step: str, body: bytes, work: Path) -> Any:
    if step == "body":
        return lambda: None
    if step == "entrez":
        from Bio import Entrez

        return lambda: Entrez.read(io.BytesIO(body), validate=False)
    if step == "reference":
        sys.path.insert(0, str(ROOT))
        from tests.reference_parse import reference_parse

        return lambda: reference_parse(body)
    from kratomlit.parse import iter_pubmed_xml, parse_pubmed_xml

    if step == "parse":
        return lambda: parse_pubmed_xml(body)
    if step == "stream":
        return lambda: sum(1 for _ in iter_pubmed_xml(body))
    return lambda: _parse_store(body, work)


def _parse_store(body: bytes, work: Path) -> int:
    from kratomlit.parse import parse_pubmed_xml
    from kratomlit.store import Library

    path = Path(tempfile.mkdtemp(dir=work)) / "library.db"
    with Library(path) as lib:
        sid = lib.runs.get_search("1:99999999[uid]").id
        records = parse_pubmed_xml(body).records
        for i in range(0, len(records), 500):
            lib.records.save_batch(sid, records[i:i + 500])
        return lib.records.count()


def body_file(work: Path, size: int) -> Path:
    return work / f"efetch_{size}.xml"


def child(step: str, size: int, rounds: int, work: Path) -> None:
    if step == "build":
        body_file(work, size).write_bytes(build_body(size))
        return
    body = body_file(work, size).read_bytes()
    fn = step_function(step, body, work)
    walls, cpus = [], []
    for _ in range(rounds):
        wall, cpu = time.perf_counter(), time.process_time()
        fn()
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    print(json.dumps({"wall": min(walls), "cpu": min(cpus), "mb": len(body) / 1e6}))


# ---- parent: one process per step, RSS from wait4 ----------------------------------------

def run_step(step: str, size: int, rounds: int, work: Path) -> dict[str, Any]:
    """``step`` in a child process: its timings (stdout) and peak RSS (``os.wait4``). The
    answer is built by another child and read from a file, so the parent stays small (a
    child's ``ru_maxrss`` starts from its parent's resident size)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, __file__, "--child", step, "--sizes", str(size),
                             "--rounds", str(rounds), "--work", str(work)],
                            stdout=subprocess.PIPE, env=env, cwd=ROOT)
    assert proc.stdout is not None
    out = proc.stdout.read()
    _pid, status, usage = os.wait4(proc.pid, 0)
    if status != 0:
        raise SystemExit(f"step {step} ({size} records) failed")
    if step == "build":
        return {}
    result = json.loads(out)
    result["rss_mb"] = usage.ru_maxrss / 1024  # KiB on Linux
    return result


def measure(sizes: list[int], rounds: int, work: Path) -> dict[int, dict[str, dict[str, Any]]]:
    results: dict[int, dict[str, dict[str, Any]]] = {}
    for size in sizes:
        results[size] = {}
        run_step("build", size, 1, work)
        for step in STEPS:
            r = run_step(step, size, 1 if step == "body" else rounds, work)
            results[size][step] = r
            if step != "body":
                print(f"{size:>6} {step:<12} {size / r['wall']:>7.0f} rec/s wall "
                      f"{size / r['cpu']:>7.0f} rec/s cpu  peak RSS {r['rss_mb']:.0f} MB",
                      flush=True)
    return results


def markdown(results: dict[int, dict[str, dict[str, Any]]], rounds: int, command: str) -> str:
    when = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    lines = [SECTION, "",
             f"Measured {when} on a {os.cpu_count()}-core {platform.system()} machine "
             f"({platform.machine()}), Python {platform.python_version()}, shared with other "
             "work (records/s by CPU time is the steadier figure).", "",
             f"Command: `{command}`. Each step runs in its own process on the same answer: "
             "the 343 real records of `real-records/` cloned under new PMIDs; best of "
             f"{rounds} rounds; peak RSS is the process's `ru_maxrss` (the answer's bytes "
             "included: see the baseline row).", ""]
    for size, steps in results.items():
        entrez = steps["entrez"]
        mb = steps["body"]["mb"]
        lines += [f"**{size:,} records ({mb:.1f} MB)**", "",
                  "| step | records/s (wall) | records/s (CPU) | × Bio.Entrez.read (CPU) "
                  "| peak RSS MB |", "| --- | ---: | ---: | ---: | ---: |"]
        for step in STEPS:
            r = steps[step]
            if step == "body":
                lines.append(f"| {LABELS[step]} | | | | {r['rss_mb']:.0f} |")
                continue
            lines.append(f"| {LABELS[step]} | {size / r['wall']:.0f} | {size / r['cpu']:.0f} "
                         f"| {entrez['cpu'] / r['cpu']:.1f} | {r['rss_mb']:.0f} |")
        lines.append("")
    lines += ["Notes:", ""] + [f"* {note}" for note in notes(results)]
    return "\n".join(lines) + "\n"


def notes(results: dict[int, dict[str, dict[str, Any]]]) -> list[str]:
    """What the tables say about the targets (issue 15): speed-ups and memory growth."""
    out = []
    for size, steps in results.items():
        cpu = {k: v["cpu"] for k, v in steps.items() if k != "body"}
        base = steps["body"]["rss_mb"]
        out.append(
            f"{size:,} records: the new parser is {cpu['entrez'] / cpu['parse']:.1f}x "
            f"`Bio.Entrez.read` alone ({cpu['reference'] / cpu['parse']:.1f}x the parser it "
            f"replaces); parse + store {cpu['entrez'] / cpu['parse_store']:.1f}x. Peak RSS "
            f"above the answer's own bytes: streaming {steps['stream']['rss_mb'] - base:.0f} "
            f"MB, all records kept {steps['parse']['rss_mb'] - base:.0f} MB, "
            f"`Bio.Entrez.read` {steps['entrez']['rss_mb'] - base:.0f} MB.")
    out.append("kratomlit fetches 500 records per EFetch request, so the 500-record answer is "
               "the one a search parses; larger answers show how each step scales.")
    out.append("The new parser does not parse `ReferenceList` elements (kratomlit reads "
               "nothing from them; 73 % of these records' bytes); `Bio.Entrez.read` builds "
               "them as dicts. Wall-time figures suffer most from other work on the machine.")
    return out


def write_section(path: Path, text: str) -> None:
    """Replace this benchmark's section in ``path`` (or append it), leaving the rest."""
    old = path.read_text() if path.exists() else "# Benchmarks\n"
    if SECTION in old:
        start = old.index(SECTION)
        nxt = old.find("\n## ", start + len(SECTION))
        old = old[:start].rstrip("\n") + ("\n\n" + old[nxt + 1:] if nxt >= 0 else "\n")
    path.write_text(old.rstrip("\n") + "\n\n" + text)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", default="500,5000", help="records per answer, comma-separated")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "benchmarks.md")
    ap.add_argument("--no-write", action="store_true")
    ap.add_argument("--work", type=Path)
    ap.add_argument("--child", choices=("build", *STEPS), help=argparse.SUPPRESS)
    args = ap.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    if args.child:
        return child(args.child, sizes[0], args.rounds, args.work)
    if not all((REAL / f).is_file() for f in CORPUS):
        print(f"missing {REAL}/{{{','.join(CORPUS)}}} (../shared beside the checkout)",
              file=sys.stderr)
        raise SystemExit(2)
    with tempfile.TemporaryDirectory(prefix="bench_parse_") as tmp:
        results = measure(sizes, args.rounds, args.work or Path(tmp))
    command = "python bench/bench_parse.py" + "".join(
        f" {a}" for a in sys.argv[1:] if a != "--no-write")
    text = markdown(results, args.rounds, command)
    print("\n" + text)
    if not args.no_write:
        write_section(args.out, text)


if __name__ == "__main__":
    main()
