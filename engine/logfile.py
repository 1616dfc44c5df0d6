"""Parley's log file: ``<cache>/logs/parley.log``, rotating at 2 MB with two older files kept.

The command line and the app both write to it, so "details are in the log" always points at a file the user
can open; an unexpected error's traceback goes there instead of onto the terminal.

Several processes write it at once (the app and a command, two commands), so the stock rotating handler,
which assumes it owns the file, is not enough: each process would rotate on its own count (renaming the
file under the other, deleting its newest backup, failing on a file already renamed) and go on writing into
the renamed file. ``SharedRotatingFileHandler`` rotates under a lock file, only when the file on disk is still
over the limit, and a process whose file was rotated by another reopens the new one.
"""

from __future__ import annotations

import contextlib
import logging
import logging.handlers
import os
from pathlib import Path

try:
    import fcntl
except ImportError:  # Windows: one process at a time is all the stock behaviour offers there
    fcntl = None

log = logging.getLogger(__name__)

MAX_BYTES = 2_000_000
BACKUPS = 2
_FORMAT = "%(asctime)s %(process)d %(name)s %(levelname)s: %(message)s"
CRASH_LOGGER = "parley.crash"  # tracebacks of unexpected errors: to the file only, never to the terminal
_handler: logging.handlers.RotatingFileHandler | None = None


class SharedRotatingFileHandler(logging.handlers.RotatingFileHandler):
    """A RotatingFileHandler that other processes may share its file with (see the module docstring)."""

    def __init__(self, filename: str | os.PathLike, maxBytes: int, backupCount: int, encoding: str | None = None):
        super().__init__(filename, maxBytes=maxBytes, backupCount=backupCount, encoding=encoding)
        self.lock_path = f"{self.baseFilename}.lock"

    def _rotated_elsewhere(self) -> bool:
        """The open file is no longer the one at our path: another process rotated it."""
        if self.stream is None:
            return False
        try:
            disk = os.stat(self.baseFilename)
        except FileNotFoundError:
            return True
        own = os.fstat(self.stream.fileno())
        return (disk.st_dev, disk.st_ino) != (own.st_dev, own.st_ino)

    def _reopen(self) -> None:
        if self.stream is not None:
            self.stream.close()
        self.stream = self._open()

    def shouldRollover(self, record: logging.LogRecord) -> bool:
        if self._rotated_elsewhere():
            self._reopen()
        return bool(super().shouldRollover(record))

    def emit(self, record: logging.LogRecord) -> None:
        try:
            if self.shouldRollover(record):
                with self._interprocess_lock():
                    if self._rotated_elsewhere():
                        self._reopen()
                    if super().shouldRollover(record):  # still over the limit, now that no one else rotates
                        self.doRollover()
            logging.FileHandler.emit(self, record)
        except Exception:  # noqa: BLE001 - logging's own convention: report, never raise into the caller
            self.handleError(record)

    @contextlib.contextmanager
    def _interprocess_lock(self):
        if fcntl is None:
            yield
            return
        with open(self.lock_path, "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)


def log_path() -> Path:
    from engine.packs.paths import parley_home

    return parley_home() / "logs" / "parley.log"


def attach_log_file(level: int = logging.INFO) -> Path | None:
    """Send the root logger's records at ``level`` and above to the rotating log file as well (the file of
    the current cache folder: an earlier one this process attached is closed); returns its path, or None
    when it cannot be opened (a read-only cache folder must not stop Parley, so that is only a warning)."""
    global _handler
    path = log_path()
    if _handler is not None and Path(_handler.baseFilename) == path.absolute():
        return path
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handler = SharedRotatingFileHandler(path, maxBytes=MAX_BYTES, backupCount=BACKUPS, encoding="utf-8")
    except OSError as e:
        log.warning("no log file: could not open %s (%s)", path, e)
        return None
    handler.setLevel(level)
    handler.setFormatter(logging.Formatter(_FORMAT))
    root, crash = logging.getLogger(), logging.getLogger(CRASH_LOGGER)
    if _handler is not None:
        root.removeHandler(_handler)
        crash.removeHandler(_handler)
        _handler.close()
    _handler = handler
    root.addHandler(handler)  # (the root logger's own level, set by the front-end, still filters first)
    crash.propagate = False
    crash.addHandler(handler)
    return path


def log_crash(message: str) -> None:
    """Record the exception being handled, with its traceback, in the log file only."""
    logging.getLogger(CRASH_LOGGER).error(message, exc_info=True)


def detach_log_file() -> None:
    """Stop writing to the log file (tests that gave Parley a temporary home use it to clean up)."""
    global _handler
    if _handler is not None:
        logging.getLogger().removeHandler(_handler)
        logging.getLogger(CRASH_LOGGER).removeHandler(_handler)
        _handler.close()
        _handler = None
