"""SIGTERM handled like Ctrl-C: ``timeout``, systemd and ``docker stop`` send it, and a
run stopped that way must clean up as an interrupted one does (partial files removed,
runs closed as interrupted) and exit 143 instead of dying mid-write."""

from __future__ import annotations

import signal
from types import FrameType


class Terminated(KeyboardInterrupt):
    """Raised in the main thread when the process receives SIGTERM."""

    exit_code = 143  # 128 + SIGTERM, what shells report for a terminated command


def _raise_terminated(signum: int, frame: FrameType | None) -> None:
    raise Terminated()


def handle_sigterm() -> None:
    """Turn SIGTERM into ``Terminated`` for the rest of this process."""
    signal.signal(signal.SIGTERM, _raise_terminated)


def exit_code(exc: KeyboardInterrupt) -> int:
    return getattr(exc, "exit_code", 130)  # 128 + SIGINT
