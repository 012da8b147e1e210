"""EFetch requests in flight together take turns when one fails (``eutils.RetryTurns``): only the
failing one is retried, the other is not sent meanwhile, and nothing is sent once the
failing one gives up. Real client, real session and limiter, local server."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date

import pytest

from kratomlit.errors import NetworkError
from kratomlit.eutils import EUtilsClient, RetryTurns
from tests.eutils_server import EUtilsServer, synthetic_doc

A = [7_400_000, 7_400_001]
B = [7_400_002, 7_400_003]


@contextmanager
def _client(server: EUtilsServer, max_tries: int) -> Iterator[EUtilsClient]:
    from kratomlit.config import load_settings
    from kratomlit.session import make_session

    server.state.add_docs([synthetic_doc(p, date(2020, 1, 1)) for p in A + B], term="turns")
    with make_session(load_settings()) as session:
        yield EUtilsClient(session, server.url, max_tries=max_tries, sleep=lambda s: None)


def _run(fn: Callable[[], object], out: dict[str, object], key: str,
         name: str | None = None) -> threading.Thread:
    def target() -> None:
        try:
            out[key] = fn()
        except Exception as exc:  # noqa: BLE001 - the test inspects it
            out[key] = exc

    thread = threading.Thread(target=target, name=name)
    thread.start()
    return thread


def _until(condition: Callable[[], bool]) -> None:
    deadline = time.monotonic() + 10
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.005)


def _ids(server: EUtilsServer) -> list[str]:
    return [e.params["id"] for e in server.state.requests("efetch")]


def _a_fails_then_b_starts(server: EUtilsServer, client: EUtilsClient, turns: RetryTurns,
                           out: dict[str, object]) -> None:
    first = _run(lambda: client.efetch_unparsed(A, turns=turns), out, "a")
    _until(lambda: turns._failing is not None)  # A has failed once and holds the turn
    second = _run(lambda: client.efetch_unparsed(B, turns=turns), out, "b")
    first.join(10)
    second.join(10)


def test_a_persistent_fault_gets_max_tries_and_the_other_batch_is_never_sent(server, env):
    server.state.faults = {"efetch": ["500"] * 20}
    with _client(server, max_tries=3) as client:
        turns, out = RetryTurns(), {}
        _a_fails_then_b_starts(server, client, turns, out)
    assert _ids(server) == ["7400000,7400001"] * 3  # B's request never went out
    assert isinstance(out["a"], NetworkError) and out["b"] is out["a"]
    assert client.stats.retries == 2


def test_the_other_batch_is_sent_once_the_failing_one_recovers(server, env):
    server.state.faults = {"efetch": ["500", "500"]}
    with _client(server, max_tries=5) as client:
        turns, out = RetryTurns(), {}
        _a_fails_then_b_starts(server, client, turns, out)
    assert _ids(server) == ["7400000,7400001"] * 3 + ["7400002,7400003"]
    assert all(isinstance(out[k], bytes) and b"<PubmedArticleSet" in out[k] for k in "ab")


def test_a_request_past_the_limiter_is_held_if_another_began_failing_meanwhile():
    """The last check runs at the wire, after the limiter's wait: a try refused there is
    not sent (``NotSent``) and goes through the limiter again once it is its turn."""
    from kratomlit.transport import NotSent

    turns = RetryTurns()
    turns.check()  # nobody failing: may send
    failing = threading.Thread(target=turns.failed)
    failing.start()
    failing.join()
    with pytest.raises(NotSent):
        turns.check()
    turns.failed()  # this thread failing too does not take the other's turn
    with pytest.raises(NotSent):
        turns.check()


def test_requests_with_tickets_take_their_slots_in_ticket_order(server, env):
    """The batch queued first takes its slot first even when its thread gets going last
    (slots, not arrivals: two requests on the wire together may arrive either way)."""
    taken: list[str] = []

    class Recording(RetryTurns):
        def check(self) -> None:
            super().check()
            taken.append(threading.current_thread().name)

    with _client(server, max_tries=3) as client:
        turns, out = Recording(), {}
        first, second = turns.ticket(), turns.ticket()

        def fetch(ids: list[int], ticket: int) -> bytes:
            with turns.in_order(ticket):
                return client.efetch_unparsed(ids, turns=turns)

        later = _run(lambda: fetch(B, second), out, "b", name="b")
        time.sleep(0.3)
        assert _ids(server) == [] and taken == []  # B waits for A's turn
        earlier = _run(lambda: fetch(A, first), out, "a", name="a")
        earlier.join(10)
        later.join(10)
    assert taken == ["a", "b"]
    assert sorted(_ids(server)) == ["7400000,7400001", "7400002,7400003"]
    assert all(isinstance(out[k], bytes) for k in "ab")


def test_a_ticket_whose_request_never_went_out_passes_the_turn_on():
    """A request that ends before its slot (it raised, or was never sent) frees the turn."""
    turns = RetryTurns()
    first, second = turns.ticket(), turns.ticket()
    done = threading.Event()

    def waiter() -> None:
        with turns.in_order(second):
            turns.wait()
            done.set()

    thread = threading.Thread(target=waiter)
    thread.start()
    assert not done.wait(0.2)  # the first ticket has not had its turn
    with turns.in_order(first):
        pass  # ended without a slot
    assert done.wait(5)
    thread.join(5)
