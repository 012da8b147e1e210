"""Writing output files so that a failure never leaves half of one behind, and never
replaces what must not be replaced (the library, a device, a symlink)."""

from __future__ import annotations

import contextlib
import os
import re
import stat
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from kratomlit.errors import UsageError

_PART = re.compile(r"^\.(?P<name>.+)\.(?P<pid>\d+)\.[^.]+\.part$")


def check_output(path: Path, protected: Iterable[Path] = ()) -> None:
    """Refuse, before anything is written, an output path that cannot be a plain result
    file: one of kratomlit's own files (``protected``), anything that exists and is not a
    regular file (a folder, a device such as /dev/null, a symlink such as /dev/stdout,
    which an atomic rename would replace), or a name that cannot be encoded."""
    try:
        str(path).encode("utf-8")
    except UnicodeEncodeError:
        raise UsageError(f"The output name {str(path)!r} is not valid UTF-8; give a name "
                         "the library and terminal can record.") from None
    if path.name in ("", ".", ".."):
        raise UsageError(f"{path} is a folder; give a file name.")
    try:
        info = path.lstat()
    except FileNotFoundError:
        info = None
    except OSError as exc:
        raise UsageError(f"Cannot use {path} as output: {exc.strerror or exc}.") from exc
    if info is not None and not stat.S_ISREG(info.st_mode):
        kind = "a symbolic link" if stat.S_ISLNK(info.st_mode) else \
            "a folder" if stat.S_ISDIR(info.st_mode) else "not a regular file"
        raise UsageError(f"{path} is {kind}; kratomlit writes only regular files (it "
                         "would replace it). Use '-o -' for standard output.")
    target = _resolved(path)
    for own in protected:
        if target == _resolved(own):
            raise UsageError(f"{path} is kratomlit's own {own.name}; writing there would "
                             "destroy it. Choose another output file.")


def _resolved(path: Path) -> Path:
    try:
        return path.resolve()
    except OSError:
        return path.absolute()


@contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """A temporary path beside ``path``: renamed onto it if the block succeeds, removed
    otherwise (also on Ctrl-C or SIGTERM). The same folder keeps the rename atomic. The
    temporary name carries this process's id, so leftovers of a killed process (SIGKILL
    leaves them) are removed by the next write to the same target."""
    import tempfile  # here, not at import: it pulls in random and shutil, which --help skips

    folder = path.parent if str(path.parent) else Path(".")
    remove_leftovers(folder, path.name)
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.{os.getpid()}.", suffix=".part",
                                dir=folder)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        tmp.chmod(0o666 & ~_umask())  # mkstemp makes 0600; give the usual file mode
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def remove_leftovers(folder: Path, name: str) -> int:
    """Delete ``.NAME.PID.*.part`` files whose process is gone; return how many."""
    removed = 0
    with contextlib.suppress(OSError):
        for entry in folder.glob(f".{glob_escape(name)}.*.part"):
            m = _PART.match(entry.name)
            if m and m["name"] == name and not _alive(int(m["pid"])):
                with contextlib.suppress(OSError):
                    entry.unlink()
                    removed += 1
    return removed


def glob_escape(text: str) -> str:
    return re.sub(r"([*?\[])", r"[\1]", text)


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's live process
    return True


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
