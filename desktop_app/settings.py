"""The app's persistent settings: one typed wrapper over QSettings, owned by desktop_app alone.

The engine never reads these; the window turns them into engine options. Tests pass a temporary INI
file so they never touch the user's real settings.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QByteArray, QSettings


def open_settings(path: str | Path | None = None) -> QSettings:
    """The user's settings, or an INI file at `path` (tests, portable installs)."""
    if path is not None:
        return QSettings(str(path), QSettings.Format.IniFormat)
    return QSettings(QSettings.Format.IniFormat, QSettings.Scope.UserScope, "Parley", "Parley")


class AppSettings:
    """Typed accessors; every value has a default, so a fresh or damaged file still opens the app."""

    def __init__(self, qsettings: QSettings | None = None):
        self.q = qsettings if qsettings is not None else open_settings()

    def _get(self, key: str, default, kind=str):
        value = self.q.value(key, default)
        if value is None:
            return default
        try:
            if kind is bool:
                return value if isinstance(value, bool) else str(value).lower() in ("1", "true", "yes")
            return kind(value)
        except (TypeError, ValueError):
            return default

    def _set(self, key: str, value) -> None:
        self.q.setValue(key, value)

    def sync(self) -> None:
        self.q.sync()

    # Input and languages
    @property
    def device_name(self) -> str:
        return self._get("input/device_name", "")

    @device_name.setter
    def device_name(self, value: str) -> None:
        self._set("input/device_name", value)

    @property
    def source_language(self) -> str:
        """'' means auto-detect."""
        return self._get("languages/source", "")

    @source_language.setter
    def source_language(self, value: str) -> None:
        self._set("languages/source", value)

    @property
    def target_language(self) -> str:
        """'' means no translation."""
        return self._get("languages/target", "")

    @target_language.setter
    def target_language(self, value: str) -> None:
        self._set("languages/target", value)

    # Model and compute device
    @property
    def model(self) -> str:
        """A pack folder path, or '' for the default pack."""
        return self._get("model/pack", "")

    @model.setter
    def model(self, value: str) -> None:
        self._set("model/pack", value)

    @property
    def compute_device(self) -> str:
        return self._get("model/device", "cpu")

    @compute_device.setter
    def compute_device(self, value: str) -> None:
        self._set("model/device", value)

    # Window geometry (opaque Qt blobs)
    @property
    def window_geometry(self) -> QByteArray | None:
        value = self.q.value("window/geometry")
        return value if isinstance(value, QByteArray) and not value.isEmpty() else None

    @window_geometry.setter
    def window_geometry(self, value: QByteArray) -> None:
        self._set("window/geometry", value)

    # Caption overlay
    @property
    def overlay_rect(self) -> tuple[int, int, int, int] | None:
        value = self.q.value("overlay/rect")
        if not value:
            return None
        try:
            x, y, w, h = (int(v) for v in (value if isinstance(value, (list, tuple)) else str(value).split(",")))
        except (TypeError, ValueError):
            return None
        return (x, y, w, h) if w > 0 and h > 0 else None

    @overlay_rect.setter
    def overlay_rect(self, rect: tuple[int, int, int, int]) -> None:
        self._set("overlay/rect", ",".join(str(int(v)) for v in rect))

    @property
    def overlay_visible(self) -> bool:
        return self._get("overlay/visible", False, bool)

    @overlay_visible.setter
    def overlay_visible(self, value: bool) -> None:
        self._set("overlay/visible", bool(value))

    @property
    def overlay_font_pt(self) -> int:
        return max(8, min(96, self._get("overlay/font_pt", 22, int)))

    @overlay_font_pt.setter
    def overlay_font_pt(self, value: int) -> None:
        self._set("overlay/font_pt", int(value))

    @property
    def overlay_opacity(self) -> float:
        """Background opacity 0..1 (the text stays opaque)."""
        return max(0.0, min(1.0, self._get("overlay/opacity", 0.6, float)))

    @overlay_opacity.setter
    def overlay_opacity(self, value: float) -> None:
        self._set("overlay/opacity", float(value))

    @property
    def overlay_mode(self) -> str:
        """'translation', 'transcript' or 'both'."""
        mode = self._get("overlay/mode", "both")
        return mode if mode in ("translation", "transcript", "both") else "both"

    @overlay_mode.setter
    def overlay_mode(self, value: str) -> None:
        self._set("overlay/mode", value)

    @property
    def overlay_click_through(self) -> bool:
        return self._get("overlay/click_through", False, bool)

    @overlay_click_through.setter
    def overlay_click_through(self, value: bool) -> None:
        self._set("overlay/click_through", bool(value))

    @property
    def record_live(self) -> bool:
        """Keep each live session's audio in <cache>/recordings/ (the newest three) so its lines can be
        corrected into training data; off: nothing is written to disk."""
        return self._get("live/record", True, bool)

    @record_live.setter
    def record_live(self, value: bool) -> None:
        self._set("live/record", bool(value))

    @property
    def last_dir(self) -> str:
        return self._get("files/last_dir", "")

    @last_dir.setter
    def last_dir(self, value: str) -> None:
        self._set("files/last_dir", value)

    @property
    def glossary_path(self) -> Path:
        """The user's glossary (Training → Glossary…): ``glossary.txt`` next to the settings file."""
        return Path(self.q.fileName()).parent / "glossary.txt"
