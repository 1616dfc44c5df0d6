"""Parley's log file: ``<cache>/logs/parley.log``, rotating at 2 MB with two older files kept.

The command line and the app both write to it, so "details are in the log" always points at a file the user
can open; an unexpected error's traceback goes there instead of onto the terminal.
"""

from __future__ import annotations

import logging
import logging.handlers
from pathlib import Path

log = logging.getLogger(__name__)

MAX_BYTES = 2_000_000
BACKUPS = 2
_FORMAT = "%(asctime)s %(process)d %(name)s %(levelname)s: %(message)s"
CRASH_LOGGER = "parley.crash"  # tracebacks of unexpected errors: to the file only, never to the terminal
_handler: logging.handlers.RotatingFileHandler | None = None


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
        handler = logging.handlers.RotatingFileHandler(path, maxBytes=MAX_BYTES, backupCount=BACKUPS,
                                                       encoding="utf-8")
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
