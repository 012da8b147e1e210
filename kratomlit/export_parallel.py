"""Large exports on two cores: a helper process reads and prepares every other chunk
while this one does the rest and writes them all, in order, to the one file.

Reading, decoding and formatting a chunk all hold the GIL, so a thread would not help;
a process does the whole of a chunk (read its PMID range, decode, build rows, format)
and sends back only what the file takes (UTF-8 text, an Arrow table): a few bytes per
record to pass, where pickling rows cost as much as formatting them. The chunks are the
ones a single process would read (the same PMID boundaries, worked out first), so the
file is byte for byte the same. The helper is a fresh interpreter (not a fork: a
forked SQLite connection must not be used, and the parent may hold threads), it works
at most one chunk ahead (a pipe send blocks until this process reads it), so memory
stays flat, and it is stopped however the export ends; the file itself stays atomic
(``files.atomic_path``) because only this process writes it.
"""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from multiprocessing.connection import Connection
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kratomlit.errors import ExportError, KratomlitError
from kratomlit.export_formats import Writer, open_writer
from kratomlit.models import ExportOptions

if TYPE_CHECKING:
    from kratomlit.export import ExportQuery, Tally
    from kratomlit.store import Library

# fewer chunks than this: one process (a helper's start-up, ~0.2 s of CPU, would not pay)
HELPER_MIN_CHUNKS = 3
JOIN_WAIT_S = 5.0
Slice = tuple[int, int | None]  # PMIDs above the first, up to the second (None: no end)


def helper_pays(writer: Writer, slices: Sequence[Slice]) -> bool:
    """True when a second core may share the export: the format can be prepared apart
    from the file, there are enough chunks, and there is a second core."""
    return writer.parallel and len(slices) >= HELPER_MIN_CHUNKS and _cores() > 1


def _cores() -> int:
    """Cores this process may run on (a container or taskset may allow fewer than the
    machine has)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def slices(library: Library, query: ExportQuery, size: int) -> list[Slice]:
    """The PMID ranges of the chunks keyset paging reads (``size`` records each, the last
    open-ended), from one pass over the selected PMIDs that keeps only every
    ``size``-th: memory stays flat however many records there are."""
    where, args = query.sql()
    bounds = [row[0] for row in library.db.execute(
        "SELECT pmid FROM (SELECT r.pmid AS pmid, row_number() OVER (ORDER BY r.pmid) AS n "
        f"FROM records r WHERE {where}) WHERE n % ? = 0", [*args, size])]
    return list(zip([query.after, *bounds], [*bounds, query.upto], strict=True))


def shared_chunks(library: Library, query: ExportQuery, options: ExportOptions, tally: Tally,
                  writer: Writer, about: Mapping[str, str], parts: Sequence[Slice]
                  ) -> Iterator[int]:
    """Write the chunks of ``parts`` with ``writer`` in order, the odd ones prepared by
    the helper; yields each chunk's record count, adds the skipped unlabelled records
    to ``tally``."""
    from kratomlit.export import slice_rows

    with _helper(library.path, options, about, query, parts[1::2]) as answers:
        for i, part in enumerate(parts):
            if i % 2 == 0:
                for rows in slice_rows(library, query, part, options, tally):
                    writer.write(rows)
                    yield len(rows)
                continue
            count, unlabelled, prepared = next(answers)
            tally.unlabelled += unlabelled
            for item in prepared:
                writer.write_prepared(item)
            if count:
                yield count


# the helper's first lines: this process's import path, then its own module (a fresh
# interpreter, not multiprocessing's spawn, which would run the caller's __main__ again)
_BOOT = ("import pickle, sys; sys.path[:] = pickle.load(sys.stdin.buffer); "
         "from kratomlit.export_parallel import helper_main; helper_main()")


@contextmanager
def _helper(path: Path, options: ExportOptions, about: Mapping[str, str], query: ExportQuery,
            parts: Sequence[Slice]) -> Iterator[Iterator[tuple[int, int, list[Any]]]]:
    """Start the helper on ``parts``; yields its answers, one per part, in order. The
    helper is stopped when the block ends, finished or not (Ctrl-C, an error). It runs
    in its own session, so a Ctrl-C reaches this process only, which then stops it."""
    mine_fd, theirs_fd = os.pipe()
    try:
        process = subprocess.Popen(
            [sys.executable, "-c", _BOOT, str(theirs_fd)], stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL, pass_fds=(theirs_fd,), start_new_session=True)
    finally:
        os.close(theirs_fd)  # ours is then the only reading end: EOF when the helper dies
    mine = Connection(mine_fd, writable=False)
    try:
        _send_work(process, path, options, about, query, parts)
        yield (_answer(mine) for _ in parts)
        process.wait(JOIN_WAIT_S)
    finally:
        mine.close()
        if process.poll() is None:
            process.kill()
            process.wait()


def _send_work(process: subprocess.Popen[bytes], path: Path, options: ExportOptions,
               about: Mapping[str, str], query: ExportQuery, parts: Sequence[Slice]) -> None:
    assert process.stdin is not None
    try:
        with process.stdin as stdin:
            pickle.dump(sys.path, stdin)
            pickle.dump((path, options, dict(about), query, list(parts)), stdin)
    except BrokenPipeError:
        pass  # it died at start: the first answer says so


def _answer(conn: Connection) -> tuple[int, int, list[Any]]:
    """The helper's next answer; its error raised here, as if this process had met it."""
    try:
        kind, *body = conn.recv()
    except EOFError:
        raise ExportError("The export's helper process stopped unexpectedly; nothing was "
                          "written. Try again.") from None
    if kind == "error":
        raise body[0]
    return body[0], body[1], body[2]


def helper_main() -> None:
    """The helper process (``_BOOT``): reads its work from stdin, sends each part's
    chunks, prepared, in order down the pipe named by its first argument; or the error."""
    conn = Connection(int(sys.argv[1]), readable=False)
    try:
        path, options, about, query, parts = pickle.load(sys.stdin.buffer)
        for answer in _prepared(path, options, about, query, parts):
            conn.send(answer)
    except BaseException as exc:  # noqa: BLE001 - every failure goes to the parent
        _send_error(conn, exc)
    finally:
        conn.close()


def _prepared(path: Path, options: ExportOptions, about: dict[str, str], query: ExportQuery,
              parts: list[Slice]) -> Iterator[tuple[str, int, int, list[Any]]]:
    from kratomlit.export import Tally, gc_paused, slice_rows
    from kratomlit.store import Library

    with Library(path, readonly=True) as library, \
            open_writer(options, None, about) as writer, gc_paused():
        for part in parts:
            tally = Tally()
            prepared, count = [], 0
            for rows in slice_rows(library, query, part, options, tally):
                prepared.append(writer.prepare(rows))
                count += len(rows)
            yield "ok", count, tally.unlabelled, prepared


def _send_error(conn: Connection, exc: BaseException) -> None:
    """Send ``exc`` (as a KratomlitError with its message if it cannot be pickled)."""
    try:
        pickle.dumps(exc)
    except Exception:  # noqa: BLE001 - any pickling failure
        exc = KratomlitError(f"{type(exc).__name__}: {exc}")
    try:
        conn.send(("error", exc))
    except OSError:
        pass  # the parent is gone
