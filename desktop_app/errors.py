"""Turn any exception into the one sentence the window shows; the traceback goes to the log only."""

from __future__ import annotations

import logging

from engine.logfile import log_path

log = logging.getLogger(__name__)


def _sentence(text: str) -> str:
    text = " ".join(str(text).split())
    if not text:
        return text
    text = text[0].upper() + text[1:]
    return text if text.endswith((".", "!", "?")) else text + "."


def describe_error(error: BaseException, doing: str) -> str:
    """`doing` says what was attempted, e.g. "transcribing talk.mp3"."""
    kind = type(error).__name__
    is_parley = any(c.__name__ == "ParleyError" for c in type(error).__mro__)
    if is_parley:
        # Engine errors are written for users already: what happened and what to do.
        log.warning("%s failed: %s", doing, error)
        return _sentence(str(error))
    if isinstance(error, FileNotFoundError):
        log.warning("%s failed: %s", doing, error)
        return _sentence(f"{doing} failed: the file {error.filename or ''} does not exist")
    if isinstance(error, PermissionError):
        log.warning("%s failed: %s", doing, error)
        return _sentence(f"{doing} failed: permission denied for {error.filename or 'a file'}")
    if isinstance(error, MemoryError):
        log.error("%s ran out of memory", doing)
        return _sentence(f"{doing} ran out of memory; try a smaller model or close other programs")
    log.error("%s failed", doing, exc_info=error)
    detail = str(error).strip().splitlines()[0] if str(error).strip() else kind
    return _sentence(f"Something went wrong while {doing} ({kind}: {detail}); the app is still usable, "
                     f"and the details are in the log file {log_path()}")
