"""A request's connection is opened before it waits for the rate limiter (``ConnectFirst``):
the limiter's margin covers jitter, not a handshake that delays only some requests."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from kratomlit.config import load_settings
from kratomlit.session import make_limiter, make_session
from kratomlit.transport import NotSent, checked_before_sending

BODY = b"ok"


class ConnectionLog:
    """An HTTP/1.1 server that logs when each connection was accepted and when each
    request arrived on it, and answers every request with a short keep-alive 200."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.accepted: list[float] = []
        self.requests: list[tuple[int, float]] = []  # (connection number, arrival)
        self._stop = False
        threading.Thread(target=self._serve, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    def _serve(self) -> None:
        while not self._stop:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.accepted.append(time.monotonic())
            number = len(self.accepted)
            threading.Thread(target=self._answer, args=(conn, number), daemon=True).start()

    def _answer(self, conn: socket.socket, number: int) -> None:
        with conn, conn.makefile("rb") as reader:
            while True:
                line = reader.readline()
                if not line:
                    return
                self.requests.append((number, time.monotonic()))
                while line not in (b"\r\n", b"\n", b""):
                    line = reader.readline()
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n"
                             b"Connection: keep-alive\r\n\r\n" + BODY)

    def close(self) -> None:
        self._stop = True
        self.sock.close()


@pytest.fixture
def log() -> Iterator[ConnectionLog]:
    server = ConnectionLog()
    yield server
    server.close()


def _settings(tmp_path: Path):  # type: ignore[no-untyped-def]
    return load_settings({"home": tmp_path / "home"}, env={})


def test_the_connection_is_open_before_the_request_waits_for_its_slot(log, tmp_path):
    settings = _settings(tmp_path)
    limiter = make_limiter(settings)
    for _ in range(settings.requests_per_second):  # the budget of this second is spent
        limiter.try_acquire("eutils", blocking=True)
    with make_session(settings) as session:
        started = time.monotonic()
        assert session.get(log.url, timeout=10).content == BODY
    (number, arrived), = log.requests
    assert arrived - started >= 0.9  # it waited for a slot ...
    assert log.accepted[number - 1] - started < 0.5  # ... on a connection opened before


def test_a_request_refused_at_the_wire_gives_its_connection_back(log, tmp_path):
    def refuse() -> None:
        raise NotSent

    with make_session(_settings(tmp_path)) as session:
        with checked_before_sending(refuse), pytest.raises(NotSent):
            session.get(log.url, timeout=10)
        assert session.get(log.url, timeout=10).content == BODY
    assert log.requests == [(1, log.requests[0][1])]  # sent once, on the one connection
    assert len(log.accepted) == 1


def test_requests_in_flight_together_each_get_their_own_open_connection(log, tmp_path):
    with make_session(_settings(tmp_path)) as session:
        threads = [threading.Thread(target=session.get, args=(log.url,),
                                    kwargs={"timeout": 10}) for _ in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert session.get(log.url, timeout=10).content == BODY  # pooled ones are reused
    assert len(log.requests) == 4
    assert len(log.accepted) <= 3


def test_a_refused_connection_fails_as_a_connection_error(tmp_path):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # nothing listens here once closed
    with make_session(_settings(tmp_path)) as session, \
            pytest.raises(requests.ConnectionError, match="refused"):
        session.get(f"http://127.0.0.1:{port}/", timeout=10)


@pytest.fixture
def tls_server(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """An HTTPS server on 127.0.0.1 with a self-signed certificate (made by openssl)."""
    import http.server
    import shutil
    import ssl
    import subprocess

    if not shutil.which("openssl"):
        pytest.skip("openssl is needed to make a test certificate")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    made = subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes",
                           "-keyout", str(key), "-out", str(cert), "-days", "1",
                           "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
                          capture_output=True)
    if made.returncode:
        pytest.skip(f"openssl could not make a test certificate: {made.stderr[-200:]!r}")

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:  # noqa: N802
            self.send_response(200)
            self.send_header("Content-Length", str(len(BODY)))
            self.end_headers()
            self.wfile.write(BODY)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"https://127.0.0.1:{server.server_port}/", cert
    server.shutdown()
    server.server_close()


def test_https_connections_opened_first_are_verified(tls_server, tmp_path):
    url, cert = tls_server
    with make_session(_settings(tmp_path)) as session:
        for _ in range(2):  # the second reuses the verified connection
            assert session.get(url, timeout=10, verify=str(cert)).content == BODY
        with pytest.raises(requests.exceptions.SSLError, match="CERTIFICATE_VERIFY_FAILED"):
            session.get(url, timeout=10)  # the default CA bundle does not know this one
