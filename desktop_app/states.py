"""The window's states, one enum each. StrEnum: a state prints, logs and compares as its name."""

from __future__ import annotations

import enum


class LiveState(enum.StrEnum):
    IDLE = "idle"
    STARTING = "starting"  # asked the worker to start; the session is not listening yet
    RUNNING = "running"
    FINISHING = "finishing"  # Stop pressed: the audio already captured is still being transcribed


class ModelState(enum.StrEnum):
    NONE = "none"  # no model chosen
    LOADING = "loading"
    READY = "ready"
    FAILED = "failed"
