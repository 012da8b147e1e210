"""The guarded transport under every E-utilities request: a size cap and a deadline.

``GuardedAdapter`` reads each answer itself, before requests-cache sees it, so that no
answer can exceed ``max_bytes`` once decompressed (a gzip bomb of 2 MB that expands to
2 GB stops at the cap, never reaching memory or the cache) and no request can outlive its
deadline (``DEADLINE_FACTOR`` times the timeout), however slowly a server trickles its
headers or body. Both failures are ``requests`` exceptions, so the client retries them as
transient faults. Only requests and urllib3 are imported: the CLI's start-up stays light.
"""

from __future__ import annotations

import io
import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from typing import Any

import requests
from requests.adapters import HTTPAdapter
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import DecodeError, HTTPError, ProtocolError, ReadTimeoutError

DEADLINE_FACTOR = 4  # a whole request (connect, headers, body) may take 4x --timeout
DEFAULT_DEADLINE_S = 300.0  # when a caller gives no timeout at all
CHUNK = 64 * 1024  # urllib3 decompresses at most this much per read: the cap's overshoot
_WATCH = threading.local()  # the watchdog of the request this thread is sending, its check


class NotSent(Exception):
    """Raised by a ``checked_before_sending`` check: the request must not go out now."""


@contextmanager
def checked_before_sending(check: Callable[[], None]) -> Iterator[None]:
    """Run ``check`` in this thread right before each request goes on the wire: after the
    cache and the rate limiter, so a check that raises ``NotSent`` sees the latest state
    (eutils' ``RetryTurns``: another request began failing while this one waited for
    its slot)."""
    previous = getattr(_WATCH, "check", None)
    _WATCH.check = check
    try:
        yield
    finally:
        _WATCH.check = previous


class ResponseTooLarge(requests.RequestException):
    """An answer grew past the size cap (decompressed); transient: it may be a bad proxy."""


class DeadlineExceeded(requests.Timeout):
    """A request was still unfinished at its overall deadline."""


class _Watchdog:
    """Shuts down the sockets of one request when its deadline passes.

    A socket timeout bounds each read, not a request: a server sending a byte a second
    never trips it. Shutting the socket down wakes the blocked read (headers or body),
    which then fails; ``expired`` tells the adapter why.
    """

    def __init__(self, seconds: float):
        self.seconds = seconds
        self.conns: list[Any] = []
        self.expired = False
        self._done = False
        self._lock = threading.Lock()
        self._timer = self._arm(seconds)

    def _arm(self, seconds: float) -> threading.Timer:
        timer = threading.Timer(seconds, self._fire)
        timer.daemon = True
        timer.start()
        return timer

    def _fire(self) -> None:
        with self._lock:
            if self._done:
                return
            self.expired = True
            self._shut()
            self._timer = self._arm(0.2)  # a connection opened just now: shut it too

    def _shut(self) -> None:
        for conn in self.conns:
            sock = getattr(conn, "sock", None)
            if sock is not None:
                with suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)

    def stop(self) -> None:
        with self._lock:
            self._done = True
            self._timer.cancel()
            if self.expired:  # never hand a half-read connection back to the pool
                for conn in self.conns:
                    with suppress(Exception):
                        conn.close()


class _WatchedPool:
    """A connection pool that tells the current request's watchdog which connection it
    was given, so the watchdog can shut that connection's socket."""

    def _get_conn(self, timeout: float | None = None) -> Any:
        conn = super()._get_conn(timeout)  # type: ignore[misc]
        watch = getattr(_WATCH, "current", None)
        if watch is not None:
            watch.conns.append(conn)
        return conn


class _WatchedHTTPPool(_WatchedPool, HTTPConnectionPool):
    pass


class _WatchedHTTPSPool(_WatchedPool, HTTPSConnectionPool):
    pass


class GuardedAdapter(HTTPAdapter):
    """An HTTPAdapter that reads each answer itself: at most ``max_bytes`` decompressed,
    and all of it (connect, headers, body) within ``DEADLINE_FACTOR`` x the timeout."""

    def __init__(self, max_bytes: int, **kwargs: Any):
        self.max_bytes = max_bytes
        super().__init__(**kwargs)

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {"http": _WatchedHTTPPool,
                                                   "https": _WatchedHTTPSPool}

    def proxy_manager_for(self, proxy: str, **kwargs: Any) -> Any:
        manager = super().proxy_manager_for(proxy, **kwargs)
        manager.pool_classes_by_scheme = {"http": _WatchedHTTPPool, "https": _WatchedHTTPSPool}
        return manager

    def send(self, request: requests.PreparedRequest, stream: bool = False,
             timeout: Any = None, verify: Any = True, cert: Any = None,
             proxies: Any = None) -> requests.Response:
        check = getattr(_WATCH, "check", None)
        if check is not None:
            check()
        watch = _Watchdog(deadline_for(timeout))
        _WATCH.current = watch
        try:
            try:
                resp = super().send(request, stream=True, timeout=timeout, verify=verify,
                                    cert=cert, proxies=proxies)
            except requests.RequestException:
                if watch.expired:
                    raise DeadlineExceeded(_late(watch), request=request) from None
                raise
            try:
                resp._content = self._read(resp, watch)
            except BaseException:
                resp.close()  # a half-read connection is never reused
                raise
            resp.raw.release_conn()
        finally:
            _WATCH.current = None
            watch.stop()
        return resp

    def _read(self, resp: requests.Response, watch: _Watchdog) -> bytes:
        """The decoded body, refused past the size cap or the deadline. Gathered in one
        growing buffer, which becomes the body without a copy: joining a list of chunks
        held each answer twice at once (a 20 MB EFetch answer peaked at 40 MB)."""
        body = io.BytesIO()
        size = 0
        try:
            for chunk in resp.raw.stream(CHUNK, decode_content=True):
                size += len(chunk)
                if size > self.max_bytes:
                    raise ResponseTooLarge(
                        f"the answer is larger than {self.max_bytes // 2**20} MB once "
                        "decompressed (max_response_mb, KRATOMLIT_MAX_RESPONSE_MB); nothing "
                        "of it was kept", request=resp.request)
                body.write(chunk)
        except (HTTPError, OSError) as exc:
            if watch.expired:
                raise DeadlineExceeded(_late(watch), request=resp.request) from None
            raise _as_requests_error(exc, resp) from exc
        if watch.expired:  # a body without a length ends at the shutdown: not complete
            raise DeadlineExceeded(_late(watch), request=resp.request)
        return body.getvalue()  # CPython hands over its buffer, not a copy


def deadline_for(timeout: Any) -> float:
    """The overall deadline of a request given requests' ``timeout`` (seconds or a
    (connect, read) pair)."""
    values = timeout if isinstance(timeout, tuple) else (timeout,)
    numbers = [float(v) for v in values if isinstance(v, int | float)]
    return DEADLINE_FACTOR * max(numbers) if numbers else DEFAULT_DEADLINE_S


def _late(watch: _Watchdog) -> str:
    return (f"no complete answer within {watch.seconds:g} s (the deadline of a request is "
            f"{DEADLINE_FACTOR} x --timeout)")


def _as_requests_error(exc: BaseException, resp: requests.Response) -> requests.RequestException:
    """urllib3's errors while reading a body, as requests would raise them."""
    if isinstance(exc, ReadTimeoutError):
        return requests.ConnectionError(exc, request=resp.request)
    if isinstance(exc, DecodeError):
        return requests.exceptions.ContentDecodingError(exc, request=resp.request)
    if isinstance(exc, ProtocolError | OSError):
        return requests.exceptions.ChunkedEncodingError(exc, request=resp.request)
    return requests.RequestException(exc, request=resp.request)


def guard(session: requests.Session, max_bytes: int) -> requests.Session:
    """Mount ``GuardedAdapter`` on ``session`` for http and https; return the session."""
    for prefix in ("http://", "https://"):
        session.mount(prefix, GuardedAdapter(max_bytes))
    return session
