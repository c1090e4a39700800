"""How a baseline file reaches the disk: whole or not at all, one writer at a time.

A file written in place and killed halfway keeps a prefix that is still valid YAML, and the
next run compares against what survived. So the text goes to a temporary file in the same
folder, is flushed to the disk, and replaces the file in one `os.replace`: a reader, or a run
after a crash, finds the old file or the new one.

Two runs refreshing the same folder at once would leave it mixed from both. A run that
writes a baseline holds `.<file>.lock` beside it until its session ends (`FileLock`); another
run that wants the file is refused, naming it. The lock is an OS lock on the file (`flock`), so a
run killed with SIGKILL leaves no lock behind, only the empty file, which the next run takes.

Every I/O error ends in one line naming the baseline file (a `ValueError`, as for a file
that cannot be read), never a traceback.
"""

from __future__ import annotations

import os
import socket
import tempfile
from pathlib import Path

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None
    import msvcrt

TEMPORARY_SUFFIX = ".tmp"


def write_atomically(path: Path, text: str) -> None:
    """Write `text` to `path` through a temporary file in its folder and `os.replace`."""
    path = Path(path)
    data = text.encode("utf-8")
    temporary = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=TEMPORARY_SUFFIX)
        try:
            if hasattr(os, "fchmod"):
                os.fchmod(descriptor, _mode_of(path))
            view = memoryview(data)
            while view:  # os.write may write less than it was given
                view = view[os.write(descriptor, view) :]
            os.fsync(descriptor)
        finally:
            os.close(descriptor)
        os.replace(temporary, path)
        temporary = None
        _sync_folder(path.parent)
    except OSError as error:
        raise ValueError(unwritable(path, error)) from None
    finally:
        if temporary is not None:
            _remove(Path(temporary))


def unwritable(path: Path, error: OSError) -> str:
    """The one line an I/O error on the baseline `path` becomes."""
    reason = error.strerror or type(error).__name__
    return (
        f"Cannot write the baseline {path}: {reason}; expected a folder this run can write ({Path(path).parent}): "
        f"make it writable, or point pc_baseline_dir (--pc-baseline-dir) at one that is"
    )


def remove_leftovers(path: Path) -> None:
    """Delete temporary files that runs killed while writing `path` left behind (call it holding the lock)."""
    for leftover in Path(path).parent.glob(f".{Path(path).name}.*{TEMPORARY_SUFFIX}"):
        _remove(leftover)


class FileLock:
    """`.<file>.lock` beside a baseline file, held by one run; `acquire` refuses when another run holds it."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.lock_path = self.path.with_name(f".{self.path.name}.lock")
        self._descriptor: int | None = None

    @property
    def held(self) -> bool:
        return self._descriptor is not None

    def acquire(self) -> None:
        """Take the lock, or raise a `ValueError` naming the file and the run that holds it."""
        if self.held:
            return
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            while True:
                descriptor = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o644)
                if not _try_lock(descriptor):
                    holder = _read(descriptor)
                    os.close(descriptor)
                    raise ValueError(
                        f"Cannot write the baseline {self.path}: another run ({holder or 'pid unknown'}) holds its "
                        f"lock {self.lock_path.name} until that session ends; let it finish, then run this one again "
                        f"(two runs writing one folder at once would leave it mixed from both)"
                    )
                if _same_file(descriptor, self.lock_path):
                    break
                os.close(descriptor)  # a run that released it deleted the file after we opened it: take the new one
            self._descriptor = descriptor
            os.ftruncate(descriptor, 0)  # who holds it, for the message of a run that is refused
            os.write(descriptor, f"pid {os.getpid()} on {socket.gethostname()}".encode())
        except OSError as error:
            self.release()
            raise ValueError(unwritable(self.path, error)) from None

    def release(self) -> None:
        """Delete the lock file, then let it go: a run that opened the old file finds it deleted and takes a new one."""
        if self._descriptor is None:
            return
        descriptor, self._descriptor = self._descriptor, None
        if fcntl is not None:  # Windows cannot delete a file that is open
            _remove(self.lock_path)
        os.close(descriptor)  # closing releases the OS lock


def _try_lock(descriptor: int) -> bool:
    """Lock without waiting: False where another open file holds it (another run, or another session here)."""
    if fcntl is None:
        try:
            msvcrt.locking(descriptor, msvcrt.LK_NBLCK, 1)
        except OSError:  # Windows reports a held lock as EACCES or EDEADLOCK
            return False
        return True
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def _same_file(descriptor: int, path: Path) -> bool:
    try:
        return os.path.samestat(os.fstat(descriptor), os.stat(path))
    except FileNotFoundError:
        return False


def _read(descriptor: int) -> str:
    try:
        return os.pread(descriptor, 200, 0).decode(errors="replace").strip() if hasattr(os, "pread") else ""
    except OSError:
        return ""


def _mode_of(path: Path) -> int:
    """The file's own mode where it exists, else what a new file gets under the umask (mkstemp gives 0600)."""
    try:
        return path.stat().st_mode & 0o777
    except OSError:
        mask = os.umask(0)
        os.umask(mask)
        return 0o666 & ~mask


def _sync_folder(folder: Path) -> None:
    """Make the rename itself durable; not every platform can open a folder."""
    try:
        descriptor = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(descriptor)
    except OSError:
        pass
    finally:
        os.close(descriptor)


def _remove(path: Path) -> None:
    try:
        path.unlink()
    except OSError:
        pass
