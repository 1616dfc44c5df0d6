"""Live audio in: device list, a bounded ring the audio callback copies into, and 16 kHz mono out.

PortAudio (through sounddevice) calls our callback on its own thread; the callback only copies the
block into an ``AudioRing`` and never waits. When the engine falls behind, the ring drops its oldest
block and counts it, so the user sees that audio was lost instead of a growing delay.

System audio on Linux: PulseAudio and PipeWire (pipewire-pulse) offer each output's *monitor* as a
recording source. PortAudio sees the whole sound server as one ALSA device, ``pulse``; which source it
records is chosen by the ``PULSE_SOURCE`` environment variable at the moment the stream opens. So
``list_devices`` adds the server's sources (from ``pactl``) and marks monitors as "what the computer
plays", and ``Capture`` opens them through the ``pulse`` device with ``PULSE_SOURCE`` set. When that source
goes away (a USB microphone unplugged, a sink unloaded), the sound server moves the recording to another
source without a word and PortAudio keeps delivering, so ``Capture`` asks ``pactl`` every few seconds whether
its source is still there, and fails naming it when it is not.

A device that PortAudio says is in use (``Device unavailable``) is reported as busy; one that only runs at a
low rate (an 8 kHz headset) is opened at that rate and resampled to 16 kHz.

The stream factory is injectable: tests pass ``FakeInputStream.factory(clip, rate)`` (tests/fake_audio.py),
which replays a clip through the same callback path on a thread of its own.
"""

from __future__ import annotations

import collections
import dataclasses
import json
import logging
import os
import shutil
import subprocess
import threading
import time
from typing import Any, Callable

import numpy as np

from engine.audio.decode import SAMPLE_RATE, Resampler
from engine.errors import AudioDeviceError
from engine.events import Level

log = logging.getLogger(__name__)

FALLBACK_RATES = (48000, 44100, 16000, 32000, 22050, 8000)
SOURCE_CHECK_S = 2.0  # how often a pulse source's presence is asked of pactl
_PULSE_ENV_LOCK = threading.Lock()  # PULSE_SOURCE is process-wide: one stream opens at a time


@dataclasses.dataclass(frozen=True)
class DeviceInfo:
    index: int | None  # PortAudio device index (for a pulse source: that of PortAudio's "pulse" device)
    name: str
    hostapi: str
    max_input_channels: int
    default_samplerate: float
    is_monitor: bool = False  # records what the computer plays (an output's monitor source)
    pulse_source: str | None = None  # PulseAudio/PipeWire source name, opened via PULSE_SOURCE


def _sounddevice():
    try:
        import sounddevice
    except OSError as e:  # the module loads, the PortAudio library does not
        raise AudioDeviceError(f"the PortAudio library could not be loaded ({e}); install it "
                               "(Debian/Ubuntu: apt install libportaudio2) to record audio") from e
    return sounddevice


def list_devices() -> list[DeviceInfo]:
    """Input devices PortAudio offers, then the PulseAudio/PipeWire sources behind its ``pulse`` device."""
    sd = _sounddevice()
    devices = []
    pulse_index = None
    for index, d in enumerate(sd.query_devices()):
        if d["max_input_channels"] <= 0:
            continue
        if d["name"] == "pulse":
            pulse_index = index
        hostapi = sd.query_hostapis(d["hostapi"])["name"]
        devices.append(DeviceInfo(index, d["name"], hostapi, int(d["max_input_channels"]),
                                  float(d["default_samplerate"])))
    if pulse_index is not None:
        devices += [dataclasses.replace(s, index=pulse_index) for s in pulse_sources()]
    return devices


def pulse_sources(run: Callable[..., subprocess.CompletedProcess] = subprocess.run) -> list[DeviceInfo]:
    """The sound server's sources as ``pactl`` lists them; empty when there is no pactl or no server."""
    if shutil.which("pactl") is None:
        return []
    try:
        proc = run(["pactl", "--format=json", "list", "sources"], capture_output=True, text=True, timeout=5)
        if proc.returncode == 0 and proc.stdout.strip():
            return [_pulse_device(s["name"], s.get("description") or s["name"], s.get("sample_specification", ""),
                                  s.get("properties", {}).get("device.class") == "monitor")
                    for s in json.loads(proc.stdout)]
        proc = run(["pactl", "list", "short", "sources"], capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.SubprocessError, ValueError, KeyError) as e:
        log.info("pactl could not list sources: %s", e)
        return []
    if proc.returncode != 0:
        return []
    out = []
    for line in proc.stdout.splitlines():
        fields = line.split("\t")
        if len(fields) >= 4:
            out.append(_pulse_device(fields[1], fields[1], fields[3], fields[1].endswith(".monitor")))
    return out


def pulse_source_names(run: Callable[..., subprocess.CompletedProcess] = subprocess.run) -> set[str] | None:
    """The names of the sound server's sources now; None when pactl cannot say (no pactl, no server)."""
    if shutil.which("pactl") is None:
        return None
    try:
        # (asked from the engine thread while it records: a hung sound server must not hold it up for long)
        proc = run(["pactl", "list", "short", "sources"], capture_output=True, text=True, timeout=2)
    except (OSError, subprocess.SubprocessError) as e:
        log.info("pactl could not list sources: %s", e)
        return None
    if proc.returncode != 0:
        return None
    return {fields[1] for line in proc.stdout.splitlines() if len(fields := line.split("\t")) >= 2}


def _pulse_device(name: str, description: str, spec: str, monitor: bool) -> DeviceInfo:
    # spec looks like "s16le 2ch 48000Hz"
    parts = spec.split()
    channels = next((int(p[:-2]) for p in parts if p.endswith("ch") and p[:-2].isdigit()), 2)
    rate = next((float(p[:-2]) for p in parts if p.endswith("Hz") and p[:-2].isdigit()), 48000.0)
    return DeviceInfo(None, description, "PulseAudio", channels, rate, monitor or name.endswith(".monitor"), name)


def find_device(device: DeviceInfo | int | str | None, devices: list[DeviceInfo] | None = None) -> DeviceInfo:
    """A device by PortAudio index, pulse source name, exact name, or a unique part of its name."""
    if isinstance(device, DeviceInfo):
        return device
    devices = list_devices() if devices is None else devices
    if device is None:
        sd = _sounddevice()
        default = sd.default.device[0]
        matches = [d for d in devices if d.index == default and d.pulse_source is None]
        if not matches:
            raise AudioDeviceError("there is no default audio input device; connect a microphone or choose "
                                   f"one of: {_names(devices)}")
        return matches[0]
    if isinstance(device, int) or (isinstance(device, str) and device.isdigit()):
        matches = [d for d in devices if d.index == int(device) and d.pulse_source is None]
    else:
        matches = ([d for d in devices if device in (d.pulse_source, d.name)]
                   or [d for d in devices if device.casefold() in d.name.casefold()])
    if len(matches) != 1:
        what = "no audio input device" if not matches else f"{len(matches)} audio input devices"
        raise AudioDeviceError(f"{what} match {device!r}; choose one of: {_names(devices)} "
                               "(`parley devices` lists them)")
    return matches[0]


def _names(devices: list[DeviceInfo]) -> str:
    return ", ".join(f"{d.index}: {d.pulse_source or d.name}" for d in devices) or "(none found)"


class AudioRing:
    """Bounded FIFO of audio blocks between the audio callback and the engine thread.

    ``put`` never waits: when full it drops the oldest block and counts it. The lock is only ever
    held for a deque operation, so the callback cannot be held up by the reader.
    """

    def __init__(self, capacity_blocks: int = 512):
        if capacity_blocks < 1:
            raise ValueError(f"capacity_blocks must be >= 1, got {capacity_blocks}")
        self.capacity_blocks = capacity_blocks
        self._blocks: collections.deque[np.ndarray] = collections.deque()
        self._lock = threading.Lock()
        self._ready = threading.Event()
        self.dropped_blocks = 0
        self.dropped_frames = 0

    def put(self, block: np.ndarray) -> None:
        with self._lock:
            if len(self._blocks) >= self.capacity_blocks:
                oldest = self._blocks.popleft()
                self.dropped_blocks += 1
                self.dropped_frames += len(oldest)
            self._blocks.append(block)
            self._ready.set()

    def get_all(self, timeout: float | None = None) -> list[np.ndarray]:
        """Every queued block, oldest first; waits up to ``timeout`` s for one (None: forever)."""
        self._ready.wait(timeout)
        with self._lock:
            blocks = list(self._blocks)
            self._blocks.clear()
            self._ready.clear()
        return blocks

    def __len__(self) -> int:
        return len(self._blocks)


class Capture:
    """One open input stream. ``read`` returns 16 kHz mono float32; stopping keeps what was captured."""

    def __init__(self, device: DeviceInfo | int | str | None, ring: AudioRing | None = None,
                 sample_rate: int | None = None, stream_factory: Callable[..., Any] | None = None,
                 block_s: float = 0.05, stall_timeout_s: float | None = 3.0,
                 source_names: Callable[[], set[str] | None] = pulse_source_names):
        """``source_names``: the sound server's sources now (None: unknown), asked every SOURCE_CHECK_S while a
        pulse source records, to notice that it was removed."""
        self.device = find_device(device)
        self.ring = ring if ring is not None else AudioRing()
        self.block_s = block_s
        # A PulseAudio monitor of an output that plays nothing delivers no audio at all: not a fault.
        self.stall_timeout_s = None if self.device.pulse_source else stall_timeout_s
        self._factory = stream_factory
        self._rates = [int(sample_rate)] if sample_rate else _candidate_rates(self.device.default_samplerate)
        self._stream = None
        # stop() runs from the GUI/main thread and again from the session's worker as it ends: PortAudio's
        # stop and close must not run on one stream from two threads at once (seen: Pa_StopStream hung).
        self._stop_lock = threading.Lock()
        self._resampler: Resampler | None = None
        self.sample_rate: int | None = None  # the rate the device actually runs at
        self.channels = 0
        self.status_flags = 0  # callbacks PortAudio flagged (overflows and the like)
        self._stopping = False
        self._failed: str | None = None
        self._last_block_at = 0.0
        self._source_names = source_names
        self._source_checked_at = 0.0
        self._source_removed = False
        self.last_level = Level(float("-inf"), 0.0)

    # --- lifecycle -----------------------------------------------------------------------------------
    def start(self) -> None:
        factory = self._factory or _sounddevice().InputStream
        channels = min(max(self.device.max_input_channels, 1), 2)
        errors = []
        for rate in self._rates:
            try:
                stream = self._open(factory, rate, channels)
            except Exception as e:  # PortAudioError, ValueError from sounddevice, or a fake's error
                if _is_busy(e):
                    raise AudioDeviceError(
                        f"the audio device {self.device.name!r} is busy: another program is using it ({e}); "
                        "close that program, or choose another device (`parley devices` lists them)") from e
                errors.append(f"{rate} Hz: {e}")
                log.info("%s does not open at %d Hz: %s", self.device.name, rate, e)
                continue
            self._stream, self.sample_rate, self.channels = stream, rate, channels
            break
        else:
            raise AudioDeviceError(
                f"could not open the audio device {self.device.name!r} at "
                f"{', '.join(f'{r} Hz' for r in self._rates)} (its default rate is "
                f"{self.device.default_samplerate:.0f} Hz): {errors[-1] if errors else 'no rate to try'}. "
                "Close other programs that use it, or choose another device.")
        self._resampler = Resampler(self.sample_rate, SAMPLE_RATE)
        self._stopping = False
        self._failed = None
        self._source_removed = False
        self._last_block_at = self._source_checked_at = time.monotonic()
        try:
            self._stream.start()
        except Exception as e:
            self._stream.close()
            self._stream = None
            raise AudioDeviceError(f"the audio device {self.device.name!r} opened at {self.sample_rate} Hz "
                                   f"but would not start recording ({e}); choose another device") from e
        log.info("recording from %s at %d Hz, %d channel(s)", self.device.name, self.sample_rate, self.channels)

    def _open(self, factory, rate: int, channels: int):
        kwargs = dict(device=self.device.index, samplerate=rate, channels=channels, dtype="float32",
                      blocksize=max(1, round(rate * self.block_s)), callback=self._callback,
                      finished_callback=self._finished)
        if self.device.pulse_source is None:
            return factory(**kwargs)
        with _PULSE_ENV_LOCK:  # libpulse reads PULSE_SOURCE when the stream connects
            previous = os.environ.get("PULSE_SOURCE")
            os.environ["PULSE_SOURCE"] = self.device.pulse_source
            try:
                return factory(**kwargs)
            finally:
                if previous is None:
                    os.environ.pop("PULSE_SOURCE", None)
                else:
                    os.environ["PULSE_SOURCE"] = previous

    def stop(self) -> None:
        """Stop recording; blocks already captured stay readable (``read``/``drain``)."""
        self._stopping = True
        with self._stop_lock:
            stream, self._stream = self._stream, None
            if stream is None:
                return
            try:
                stream.stop()
            finally:
                stream.close()

    close = stop

    def __enter__(self) -> "Capture":
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def dropped_blocks(self) -> int:
        return self.ring.dropped_blocks

    # --- the audio thread ------------------------------------------------------------------------------
    def _callback(self, indata, frames, time_info, status) -> None:
        if status:
            self.status_flags += 1
        self.ring.put(indata.copy())
        self._last_block_at = time.monotonic()

    def _finished(self) -> None:
        if not self._stopping:
            self._failed = "stopped delivering audio (unplugged, or taken by another program)"

    # --- the engine thread --------------------------------------------------------------------------
    def read(self, timeout: float | None = 0.5) -> np.ndarray:
        """Captured audio since the last read, as 16 kHz mono float32 (empty if none came in ``timeout`` s).

        Raises AudioDeviceError once the device has failed and everything it delivered has been read.
        """
        if self._resampler is None:
            raise RuntimeError("Capture.read() before start()")
        live = self._stream is not None
        if self._source_removed:  # what came after it is another source's (PulseAudio moved the stream)
            self._check_health(live)
        blocks = self.ring.get_all(timeout if live else 0)
        if live:
            self._check_source()  # (the blocks just taken are returned first; the next read raises)
        if not blocks:
            self._check_health(live)
            return np.zeros(0, np.float32)
        frames = np.concatenate(blocks)
        mono = frames.mean(axis=1) if frames.ndim == 2 else frames
        peak = float(np.max(np.abs(mono))) if mono.size else 0.0
        rms = float(np.sqrt(np.mean(np.square(mono, dtype=np.float64)))) if mono.size else 0.0
        self.last_level = Level(20 * np.log10(rms) if rms > 0 else float("-inf"), min(peak, 1.0))
        return self._resampler.process(mono.astype(np.float32, copy=False))

    def drain(self) -> np.ndarray:
        """After ``stop``: every remaining sample, the resampler's tail included."""
        if self._resampler is None:
            return np.zeros(0, np.float32)
        parts = [self.read(0)]
        parts.append(self._resampler.flush())
        return np.concatenate(parts)

    def _check_source(self) -> None:
        """A pulse source that is gone: fail now, since what the stream delivers comes from another source."""
        if self.device.pulse_source is None or self._failed is not None:
            return
        now = time.monotonic()
        if now - self._source_checked_at < SOURCE_CHECK_S:
            return
        self._source_checked_at = now
        names = self._source_names()
        if names is not None and self.device.pulse_source not in names:
            self._failed = (f"({self.device.pulse_source}) was removed (unplugged, or its sound card or output "
                            "went away)")
            self._source_removed = True

    def _check_health(self, live: bool) -> None:
        if self._failed is None and live and self.stall_timeout_s is not None:
            if time.monotonic() - self._last_block_at > self.stall_timeout_s:
                self._failed = f"has delivered no audio for {self.stall_timeout_s:.0f} s"
        if self._failed is not None:
            raise AudioDeviceError(f"the audio device {self.device.name!r} {self._failed}; check the "
                                   "connection, then choose a device and start again")


def _is_busy(error: Exception) -> bool:
    """PortAudio's paDeviceUnavailable (-9985): the device exists but another program holds it."""
    text = str(error)
    return "-9985" in text or "Device unavailable" in text or "Device or resource busy" in text


def _candidate_rates(default_rate: float) -> list[int]:
    rates = [int(default_rate)] if default_rate and default_rate > 0 else []
    return rates + [r for r in FALLBACK_RATES if r not in rates]
