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

This module is the machinery only (when to share, starting and stopping the helper,
passing answers and errors); what a part is made of is ``export``'s, which calls it.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import subprocess
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from multiprocessing.connection import Connection
from typing import Any

from kratomlit.errors import ExportError, KratomlitError
from kratomlit.export_formats import Writer

# fewer chunks than this: one process. A helper's start-up costs 0.1-0.5 s of CPU (more
# with pyarrow); at 10,000 records (5 chunks) it saved nothing, at 50,000 a third
HELPER_MIN_CHUNKS = 8
JOIN_WAIT_S = 5.0
Slice = tuple[int, int | None]  # PMIDs above the first, up to the second (None: no end)
# what the helper makes of its work and its parts: one answer per part, in order
Produce = Callable[[Any, list[Slice]], Iterator[Any]]
# the helper's first lines: this process's import path, then ``module.helper_main`` (a
# fresh interpreter, not multiprocessing's spawn, which would run the caller's __main__)
_BOOT = ("import pickle, sys; sys.path[:] = pickle.load(sys.stdin.buffer); "
         "from {module} import helper_main; helper_main()")


def helper_pays(writer: Writer, parts: Sequence[Slice]) -> bool:
    """True when a second core may share the export: the format can be prepared apart
    from the file, there are enough chunks, and there is a second core."""
    return writer.parallel and len(parts) >= HELPER_MIN_CHUNKS and _cores() > 1


def _cores() -> int:
    """Cores this process may run on (a container or taskset may allow fewer than the
    machine has)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def shared(module: str, work: Any, parts: Sequence[Slice],
           own: Callable[[Slice], Iterator[int]], take: Callable[[Any], int]
           ) -> Iterator[int]:
    """Every part in order: the even ones by ``own(part)`` here, the odd ones answered
    by a helper running ``module.helper_main`` on ``work`` and handed to ``take`` (which
    writes the answer and returns its record count). Yields record counts (0s left out).
    When no helper can be started (a process limit), every part is done here."""
    try:
        process, conn = _start(module)
    except OSError:
        for part in parts:
            yield from own(part)
        return
    with _stopped(process, conn):
        _send_work(process, (work, list(parts[1::2])))
        for i, part in enumerate(parts):
            if i % 2 == 0:
                yield from own(part)
            elif count := take(_answer(conn)):
                yield count
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(JOIN_WAIT_S)  # it ends after its last answer; if not, killed


def _start(module: str) -> tuple[subprocess.Popen[bytes], Connection]:
    """The helper process, in its own session (a Ctrl-C reaches this process only, which
    then stops it), and the reading end of its answer pipe."""
    mine_fd, theirs_fd = os.pipe()
    try:
        process = subprocess.Popen(
            [sys.executable, "-c", _BOOT.format(module=module), str(theirs_fd)],
            stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, pass_fds=(theirs_fd,),
            start_new_session=True)
    except OSError:
        os.close(mine_fd)
        raise
    finally:
        os.close(theirs_fd)  # ours is then the only reading end: EOF when the helper dies
    return process, Connection(mine_fd, writable=False)


@contextmanager
def _stopped(process: subprocess.Popen[bytes], conn: Connection) -> Iterator[None]:
    """The helper stopped and its pipe closed when the block ends, finished or not
    (Ctrl-C, an error here or in the helper)."""
    try:
        yield
    finally:
        conn.close()
        if process.poll() is None:
            process.kill()
            process.wait()


def _send_work(process: subprocess.Popen[bytes], work: Any) -> None:
    assert process.stdin is not None
    try:
        with process.stdin as stdin:
            pickle.dump(sys.path, stdin)
            pickle.dump(work, stdin)
    except BrokenPipeError:
        pass  # it died at start: the first answer says so


def _answer(conn: Connection) -> Any:
    """The helper's next answer; its error raised here, as if this process had met it."""
    try:
        kind, body = conn.recv()
    except EOFError:
        raise ExportError("The export's helper process stopped unexpectedly; nothing was "
                          "written. Try again.") from None
    if kind == "error":
        raise body
    return body


def serve(produce: Produce) -> None:
    """The helper process's loop (its ``helper_main`` calls it): reads its work from
    stdin, sends ``produce``'s answers in order down the pipe named by its first
    argument; or the error that stopped it."""
    conn = Connection(int(sys.argv[1]), readable=False)
    try:
        work, parts = pickle.load(sys.stdin.buffer)
        for answer in produce(work, parts):
            conn.send(("ok", answer))
    except BaseException as exc:  # noqa: BLE001 - every failure goes to the parent
        _send_error(conn, exc)
    finally:
        conn.close()


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
