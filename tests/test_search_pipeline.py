"""The search pipeline (issue 15): bodies screened before they leave the fetching thread,
parsed in a worker process from the third batch, labelled per stored batch."""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

import pytest

from kratomlit import search
from kratomlit.parse import InBandError, MalformedResponse, parse_pubmed_xml, screen_pubmed_xml
from kratomlit.search import ParseWorker
from tests.eutils_server import synthetic_doc

ROOT = Path(__file__).resolve().parents[1]
PROLOG = b'<?xml version="1.0" ?>\n'


def _body(server, pmids: list[int]) -> bytes:
    from kratomlit.config import load_settings
    from kratomlit.eutils import EUtilsClient
    from kratomlit.session import make_session

    with make_session(load_settings()) as session:
        return EUtilsClient(session, server.url).efetch_unparsed(pmids)


def test_screen_passes_whole_answers_and_refuses_what_parse_would(server, env):
    docs = [synthetic_doc(7_100_000 + i, date(2020, 1, 1)) for i in range(3)]
    server.state.add_docs(docs, term="screen")
    body = _body(server, [d.pmid for d in docs])
    assert screen_pubmed_xml(body) is body
    cut = body[: len(body) // 2]
    with pytest.raises(MalformedResponse):
        screen_pubmed_xml(cut)
    with pytest.raises(MalformedResponse):
        screen_pubmed_xml(b"<!DOCTYPE html><html><title>Down</title></html>")
    with pytest.raises(InBandError):
        screen_pubmed_xml(PROLOG + b"<eFetchResult><ERROR>Backend failed</ERROR></eFetchResult>")
    # a well-formed answer that does not end as NCBI's do is parsed, not refused
    odd = body.rstrip() + b"\n<!-- trailing comment -->\n"
    assert screen_pubmed_xml(odd) is odd
    assert len(parse_pubmed_xml(odd).records) == 3


def _prefetch_all(server, n_docs: int, batch: int, first: int = 7_200_000):
    from kratomlit.config import load_settings
    from kratomlit.eutils import EUtilsClient
    from kratomlit.search import prefetched
    from kratomlit.session import make_session

    docs = [synthetic_doc(first + i, date(2020, 1, 1)) for i in range(n_docs)]
    server.state.add_docs(docs, term="pipe")
    before = {p.pid for p in multiprocessing.active_children()}  # earlier tests' workers
    children: set[int] = set()
    got = []
    with make_session(load_settings()) as session:
        client = EUtilsClient(session, server.url, batch_size=batch, sleep=lambda s: None)
        for ids, parsed in prefetched(client, client.batches([d.pmid for d in docs])):
            children |= {p.pid for p in multiprocessing.active_children()} - before
            got.append((ids, parsed))
        stats = client.stats
    return docs, got, children, stats


def test_batches_parsed_by_the_worker_equal_those_parsed_here(server, env):
    docs, got, children, stats = _prefetch_all(server, 12, 3)
    assert [ids for ids, _ in got] == [[d.pmid for d in docs[i:i + 3]] for i in range(0, 12, 3)]
    assert children, "no parse worker ran for a search of 4 batches"
    here = parse_pubmed_xml(_body(server, [d.pmid for d in docs])).records
    there = [r for _, parsed in got for r in parsed.records]
    assert there == here
    assert stats.network == 4 and stats.retries == 0


def test_a_batch_the_caller_awaits_is_parsed_in_place_the_others_by_the_worker(server, env):
    """The worker parses while the caller stores; an answer the caller is already waiting
    for skips the round trip to it."""
    from kratomlit.config import load_settings
    from kratomlit.eutils import EUtilsClient, RetryTurns
    from kratomlit.search import _Awaited, _fetch
    from kratomlit.session import make_session

    docs = [synthetic_doc(7_500_000 + i, date(2020, 1, 1)) for i in range(3)]
    server.state.add_docs(docs, term="awaited")
    ids = [d.pmid for d in docs]

    class Worker:
        handed: list[bytes] = []

        def submit(self, body: bytes):
            from concurrent.futures import Future

            self.handed.append(body)
            future: Future = Future()
            future.set_result(parse_pubmed_xml(body))
            return future

    worker, turns = Worker(), RetryTurns()
    with make_session(load_settings()) as session:
        client = EUtilsClient(session, server.url, sleep=lambda s: None)
        ticket = turns.ticket()
        here = _fetch(client, ids, False, worker, turns, ticket, _Awaited(ticket))
        ticket = turns.ticket()
        there = _fetch(client, ids, False, worker, turns, ticket, _Awaited(ticket - 1))
    assert here.parsed is not None and here.future is None
    assert [r.pmid for r in here.parsed.records] == ids
    assert there.parsed is None and there.future is not None and len(worker.handed) == 1


def test_two_batches_never_start_the_worker(server, env, monkeypatch):
    started = []  # asked directly: counting child processes raced earlier tests' exiting ones
    monkeypatch.setattr(ParseWorker, "start", lambda self: started.append(self))
    _docs, got, _children, _stats = _prefetch_all(server, 6, 3)
    assert len(got) == 2 and not started
    _docs, got, _children, _stats = _prefetch_all(server, 9, 3, first=7_300_000)
    assert len(got) == 3 and len(started) == 1  # the third batch starts it


def test_a_worker_that_cannot_start_leaves_parsing_here(server, env, monkeypatch):
    def refuse(method=None):
        raise OSError("no processes here")

    monkeypatch.setattr(multiprocessing, "get_context", refuse)
    docs, got, _children, _stats = _prefetch_all(server, 12, 3)
    assert sorted(r.pmid for _, p in got for r in p.records) == [d.pmid for d in docs]


def test_an_answer_the_parser_refuses_is_fetched_again(server, env):
    server.state.faults = {"efetch": [None, None, "malformed"]}  # the 3rd: the worker's
    docs, got, _children, stats = _prefetch_all(server, 12, 3)
    assert sorted(r.pmid for _, p in got for r in p.records) == [d.pmid for d in docs]
    assert stats.retries == 1 and stats.network == 5


class _NeverAwaited:
    """An ``_Awaited`` that never names a batch (the caller's waits are not recorded)."""

    ticket = property(lambda self: -1, lambda self, value: None)


def _submit_failing_with(error: BaseException):
    """A ``ParseWorker.submit`` whose every parse fails with ``error`` (once the pool runs)."""
    from concurrent.futures import Future

    def submit(self, body):
        if self.pool is None:
            return None
        future: Future = Future()
        future.set_exception(error)
        return future
    return submit


def test_a_batch_lost_with_the_worker_is_fetched_again(server, env, monkeypatch, caplog):
    """A worker that dies mid-search (here: every parse it is handed fails as a broken
    pool would) costs a refetch per batch it held, logged as such; nothing is lost."""
    from concurrent.futures.process import BrokenProcessPool

    monkeypatch.setattr(ParseWorker, "submit",
                        _submit_failing_with(BrokenProcessPool("worker died")))
    # every batch from the third goes to the worker, as if the caller never waited for one
    monkeypatch.setattr(search, "_Awaited", _NeverAwaited)
    # an in-process CLI run earlier in the session stops "kratomlit" propagating to the root
    monkeypatch.setattr(logging.getLogger("kratomlit"), "propagate", True)
    with caplog.at_level("WARNING", logger="kratomlit"):
        docs, got, _children, stats = _prefetch_all(server, 12, 3)
    assert sorted(r.pmid for _, p in got for r in p.records) == [d.pmid for d in docs]
    assert stats.network - 4 == stats.retries >= 1
    assert "the parse worker stopped" in caplog.text and "unreadable" not in caplog.text


def test_a_parser_error_from_the_worker_fails_as_it_does_in_thread(server, env, monkeypatch):
    """An exception of the parser's own (a bug, not a refused answer or a dead worker) ends
    the search whichever side parsed: the worker's is not mistaken for a lost worker, so
    the batch is not fetched again and the worker is not given up."""
    lost: list[bool] = []
    real_close = ParseWorker.close

    def close(self):
        lost.append(self.broken)
        real_close(self)

    monkeypatch.setattr(ParseWorker, "submit", _submit_failing_with(KeyError("a parser bug")))
    monkeypatch.setattr(ParseWorker, "close", close)
    monkeypatch.setattr(search, "_Awaited", _NeverAwaited)
    with pytest.raises(KeyError, match="a parser bug"):
        _prefetch_all(server, 12, 3)
    assert lost == [False]
    assert len(server.state.requests("efetch")) <= 4, "a batch was fetched again"


def test_the_worker_exits_when_its_parent_is_killed(tmp_path):
    script = (
        "import os, sys, time\n"
        "from kratomlit.search import ParseWorker\n"
        "w = ParseWorker(); w.start()\n"
        "w.pool.submit(int).result(timeout=60)\n"
        "print(*[p.pid for p in w.pool._processes.values()], flush=True)\n"
        "time.sleep(60)\n")
    parent = subprocess.Popen([sys.executable, "-c", script], cwd=ROOT, stdout=subprocess.PIPE,
                              env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert parent.stdout is not None
    worker = int(parent.stdout.readline())
    assert _alive(worker)
    parent.kill()
    parent.wait()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if not _alive(worker):
            return
        time.sleep(0.1)
    pytest.fail(f"parse worker {worker} outlived its killed parent")


def _alive(pid: int) -> bool:
    """Running (a zombie waiting for a reaper has exited)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    except OSError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def test_each_stored_batch_is_labelled_as_it_is_stored(server, env):
    from kratomlit.config import load_settings
    from kratomlit.eutils import EUtilsClient
    from kratomlit.search import BatchLabeller, run_search
    from kratomlit.session import make_session
    from kratomlit.store import Library

    docs = [synthetic_doc(7_300_000 + i, date(2020, 1, 1)) for i in range(7)]
    server.state.add_docs(docs, term="labels")
    settings = load_settings()
    unlabelled: list[int] = []
    with make_session(settings) as session, Library(settings.library_path) as library:
        client = EUtilsClient(session, server.url, batch_size=3, sleep=lambda s: None)
        labeller = BatchLabeller(library)

        def stored(records) -> None:
            assert len(records) in (1, 3)  # the records the batch wrote, in hand
            labeller.after_batch(records)
            unlabelled.append(sum(1 for _ in library.labels.to_label(
                labeller.classifier.version)))
            unlabelled.append(sum(1 for _ in library.extractions.to_extract(
                labeller.extractor.version)))

        summary = run_search(client, library, "labels", on_stored=stored)
        assert labeller.labelled == 7
        assert labeller.finish(summary.warnings) == 7  # nothing was left for the end
    assert summary.new == 7 and unlabelled == [0] * 6


def test_starting_the_worker_gives_ctrl_c_back():
    """The worker is spawned with Ctrl-C ignored (so a Ctrl-C cannot kill it half-started);
    afterwards this process's own handler is back: Ctrl-C still stops a search."""
    before = signal.getsignal(signal.SIGINT)
    worker = ParseWorker()
    try:
        worker.start()
        assert worker.pool is not None and not worker.broken
        assert signal.getsignal(signal.SIGINT) is before
    finally:
        worker.close()


class _Counted:
    """Stands in for ``EUtilsClient`` in ``prefetched``: every batch gets the same answer,
    at once, and requests are counted."""

    def __init__(self, body: bytes):
        self.body, self.sent = body, 0

    def efetch_unparsed(self, ids, **_):
        self.sent += 1
        return self.body

    def refetch(self, ids, why=""):
        pytest.fail(f"refetched ({why})")


def _held_while_storing(monkeypatch, body: bytes, budget: int, n: int = 10) -> list[int]:
    """For each batch, how many batches were in hand (requested, not yet stored, itself
    included) while the caller stored it."""
    monkeypatch.setattr(search, "AHEAD_BYTES", budget)
    client = _Counted(body)
    held, stored = [], 0
    for ids, parsed in search.prefetched(client, [[i] for i in range(n)]):
        assert ids == [stored] and parsed is not None and len(parsed.records) == 3
        time.sleep(0.2)  # "storing": every answer requested meanwhile is in
        held.append(client.sent - stored)
        stored += 1
    return held


def test_heavy_answers_wait_for_the_batch_being_stored(server, env, monkeypatch):
    """Answers in hand are limited in bytes (``AHEAD_BYTES``) as well as in number: with
    room for 2.5 answers, a batch is stored with at most 2 others in hand once the sizes
    are known (4 at the start, when none is), where the count alone allowed 4 always."""
    docs = [synthetic_doc(7_400_000 + i, date(2020, 1, 1)) for i in range(3)]
    server.state.add_docs(docs, term="heavy")
    body = _body(server, [d.pmid for d in docs])
    held = _held_while_storing(monkeypatch, body, int(2.5 * len(body)))
    assert max(held) <= 4 and max(held[2:]) == 3, held
    light = _held_while_storing(monkeypatch, body, 100 * len(body))
    assert max(light[:-4]) == min(light[:-4]) == 5, light  # the count alone: 4 ahead


def test_a_search_freezes_the_heap_it_starts_with_and_thaws_it(server, env):
    """What exists before a search is kept out of the cyclic collector's full passes while
    it runs (they walked the whole heap again and again) and handed back at the end; the
    collector runs less often meanwhile, and as before after."""
    import gc

    from kratomlit.config import load_settings
    from kratomlit.eutils import EUtilsClient
    from kratomlit.search import run_search
    from kratomlit.session import make_session
    from kratomlit.store import Library

    server.state.add_docs([synthetic_doc(7_400_000 + i, date(2020, 1, 1)) for i in range(4)],
                          term="frozen")
    frozen: list[int] = []
    settings = load_settings()
    with make_session(settings) as session, Library(settings.library_path) as library:
        client = EUtilsClient(session, server.url, batch_size=2, sleep=lambda s: None)
        before, thresholds = gc.get_freeze_count(), gc.get_threshold()
        run_search(client, library, "frozen", on_stored=lambda records: frozen.append(
            (gc.get_freeze_count(), gc.get_threshold()[0])))
    assert len(frozen) == 2 and all(n > before and t > thresholds[0] for n, t in frozen)
    assert gc.get_freeze_count() == before and gc.get_threshold() == thresholds


def test_a_search_that_fails_while_storing_sends_nothing_more(server, env, monkeypatch):
    """A store that fails (disk full, Ctrl-C) stops the fetching at once, even while its
    traceback is still held (the CLI keeps it as the context of its exit): no batch still
    waiting for a slot (3 requests per 1.1 s without a key) goes out."""
    monkeypatch.delenv("NCBI_API_KEY")
    from kratomlit.config import load_settings
    from kratomlit.eutils import EUtilsClient
    from kratomlit.search import run_search
    from kratomlit.session import make_session
    from kratomlit.store import Library

    docs = [synthetic_doc(7_800_000 + i, date(2020, 1, 1)) for i in range(12)]
    server.state.add_docs(docs, term="stops")
    settings = load_settings()

    def full(records) -> None:
        raise OSError("disk full")

    with make_session(settings) as session, Library(settings.library_path) as library:
        client = EUtilsClient(session, server.url, batch_size=1, sleep=lambda s: None)
        with pytest.raises(OSError) as held:
            run_search(client, library, "stops", on_stored=full)
        sent = len(server.state.requests("efetch"))
        time.sleep(1.5)  # past the limiter's window: a batch waiting for a slot would be out
        assert len(server.state.requests("efetch")) == sent < 12
        assert held.value.args == ("disk full",)
