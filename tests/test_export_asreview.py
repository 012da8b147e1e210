"""ASReview reads kratomlit's RIS, CSV and XLSX with its own loader.

ASReview 3 pins rispy below 0.10 while kratomlit needs rispy 0.10, so the two rarely share
a virtualenv: the loader runs in this interpreter when ``asreview`` imports here, or in the
interpreter named by ``KRATOMLIT_ASREVIEW_PYTHON`` (a virtualenv with ``pip install
asreview``); otherwise the test skips.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from kratomlit.cells import unescape_cell
from tests.test_export import HOSTILE, hostile  # noqa: F401  (fixture)

LOADER = """
import json, sys
from asreview.data.loader import load_records
out = {}
for path in sys.argv[1:]:
    out[path] = [{"title": r.title, "abstract": r.abstract, "authors": r.authors,
                  "doi": r.doi, "url": r.url} for r in load_records(path)]
print(json.dumps(out))
"""


def _asreview_python() -> str:
    if importlib.util.find_spec("asreview") is not None:
        return sys.executable
    python = os.environ.get("KRATOMLIT_ASREVIEW_PYTHON", "")
    if not python or not Path(python).exists():
        pytest.skip("asreview is not importable here; set KRATOMLIT_ASREVIEW_PYTHON to a "
                    "Python that has it")
    return python


def test_asreview_loads_ris_csv_and_xlsx(hostile, cli, tmp_path):  # noqa: F811
    python = _asreview_python()
    files = [tmp_path / f"k.{ext}" for ext in ("ris", "csv", "xlsx")]
    for path in files:
        assert cli("export", "-o", str(path)).exit_code == 0
    done = subprocess.run([python, "-c", LOADER, *map(str, files)], capture_output=True,
                          text=True, timeout=300, check=False, cwd=tmp_path)  # it writes a cache
    assert done.returncode == 0, done.stderr[-2000:]
    loaded = json.loads(done.stdout)
    ris, csv_, xlsx = (loaded[str(p)] for p in files)
    assert len(ris) == len(csv_) == len(xlsx) == len(hostile)
    assert sorted(r["doi"] for r in ris) == sorted(r.doi for r in hostile.values())
    assert sorted(r["title"] for r in ris) == sorted(" ".join(t.split()) for t in
                                                     (r.title for r in hostile.values()))
    # tabular files: the text is the cell, formula-escaped (one leading apostrophe)
    assert sorted(unescape_cell(r["title"]) for r in csv_) == sorted(
        r.title for r in hostile.values())
    assert {r["authors"][0] for r in ris} == {"Ødegård, K"}
    assert HOSTILE[108] in {r["title"] for r in xlsx}
