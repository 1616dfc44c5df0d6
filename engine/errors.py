"""The engine's exceptions. Every message says what happened, names the file or device, and says
what to do; the CLI and the desktop app show ``str(error)`` to the user as it is."""

from __future__ import annotations


class ParleyError(Exception):
    """Base of every error the engine raises on purpose."""


class AudioFileError(ParleyError):
    """An audio file is missing, empty, unreadable or holds no audio.

    e.g. ``talk.wav: not an audio file (looks like text)``.
    """


class AudioDeviceError(ParleyError):
    """A capture device could not be found or opened (the message lists what it supports)."""


class PackError(ParleyError):
    """A model pack is missing or corrupt; the message names the file and how to rebuild it
    (``parley models build <name>``)."""


class OutputError(ParleyError):
    """An output file could not be written (missing or read-only folder, disk full); the message names the
    file, and no partial file is left behind."""


class LanguageError(ParleyError, ValueError):
    """An unknown language code; the message lists valid ones."""


class CancelledError(ParleyError):
    """The user cancelled a running job (file transcription, model build)."""
