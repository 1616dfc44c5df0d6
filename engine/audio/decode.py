"""Audio files in, 16 kHz mono float32 out; and a resampler that also works on a live stream.

Files are decoded incrementally (a two-hour file is never held as float32 at once): soundfile for
the formats libsndfile reads (wav, flac, ogg, aiff), PyAV (FFmpeg) for mp3, m4a, mp4, webm and
anything else. Both paths mix channels to mono by averaging and resample with our own ``Resampler``
(soundfile) or FFmpeg's (PyAV).

A file that decodes to no samples at all (a 0 s WAV, a container without audio) is an error,
"contains no audio", not an empty array: nothing downstream can do anything useful with it.
A truncated file gives what could be decoded, with a warning naming it (on the CLI's stderr and in the log):
a decoder error part-way, or fewer samples than the header declares (a WAV's data chunk, an mp3's Xing frame
count, a container's duration) — libsndfile and FFmpeg both stop quietly at the end of a cut file.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import os
import struct
from pathlib import Path
from typing import Iterator

import numpy as np

from engine.errors import AudioFileError

log = logging.getLogger(__name__)

SAMPLE_RATE = 16000  # what every model in Parley hears

_SOUNDFILE_SUFFIXES = {".wav", ".wave", ".flac", ".ogg", ".oga", ".aif", ".aiff", ".au", ".w64"}
_RESAMPLER_ZEROS = 12  # sinc zero crossings on each side of the kernel (at the lower rate)
_RESAMPLER_ROLLOFF = 0.94  # cutoff as a fraction of the lower Nyquist frequency
_KAISER_BETA = 8.0
_BLOCK_OUT = 4096  # outputs computed per vectorised step (bounds temporary memory)


@dataclasses.dataclass(frozen=True)
class AudioInfo:
    path: Path
    duration_s: float  # as the container declares it (estimated for some mp3s)
    sample_rate: int  # the file's own rate, before resampling
    channels: int
    codec: str  # e.g. "PCM_16", "FLAC", "mp3", "aac"


# ---------------------------------------------------------------------------------------------
# Resampling


class Resampler:
    """Kaiser-windowed sinc resampler between two integer rates, fed chunk by chunk.

    Output sample n sits at input time n * from_rate / to_rate. ``process`` returns every output
    whose kernel the input seen so far covers; ``flush`` pads the end with zeros and returns the
    rest, so that the total output length is ceil(n_in * to_rate / from_rate). Feeding a signal in
    any chunking gives exactly the same samples as ``resample`` on the whole of it.
    """

    def __init__(self, from_rate: int, to_rate: int = SAMPLE_RATE):
        if int(from_rate) != from_rate or int(to_rate) != to_rate or from_rate <= 0 or to_rate <= 0:
            raise ValueError(f"sample rates must be positive integers, got {from_rate} -> {to_rate}")
        self.from_rate, self.to_rate = int(from_rate), int(to_rate)
        g = math.gcd(self.from_rate, self.to_rate)
        self._up, self._down = self.to_rate // g, self.from_rate // g  # out n <-> in n*down/up
        self._half, self._table = self._kernel_table()
        self._buf = np.zeros(self._half, dtype=np.float32)  # zeros stand in for t < 0
        self._buf_start = -self._half  # input index of _buf[0]
        self._n_in = 0
        self._n_out = 0

    def _kernel_table(self) -> tuple[int, np.ndarray]:
        """[up, 2*half+1] taps: row p is the kernel for outputs whose time has fraction p/up."""
        fc = 0.5 * min(1.0, self.to_rate / self.from_rate) * _RESAMPLER_ROLLOFF  # cycles/input sample
        width = _RESAMPLER_ZEROS / (2 * fc)  # half width in input samples
        half = int(math.ceil(width))
        offsets = np.arange(-half, half + 1, dtype=np.float64)
        frac = np.arange(self._up, dtype=np.float64)[:, None] / self._up
        tau = frac - offsets[None, :]  # output time minus input sample time
        inside = np.clip(1.0 - (tau / width) ** 2, 0.0, None)
        window = np.i0(_KAISER_BETA * np.sqrt(inside)) / np.i0(_KAISER_BETA) * (np.abs(tau) <= width)
        taps = 2 * fc * np.sinc(2 * fc * tau) * window
        taps /= taps.sum(axis=1, keepdims=True)  # unity gain at DC for every phase
        return half, taps.astype(np.float32)

    def process(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=np.float32).reshape(-1)
        if self.from_rate == self.to_rate:
            self._n_in += x.size
            self._n_out += x.size
            return x.copy()
        self._buf = np.concatenate([self._buf, x])
        self._n_in += x.size
        # output n needs inputs up to floor(n*down/up) + half
        last_in = self._buf_start + self._buf.size - 1
        n_end = ((last_in - self._half + 1) * self._up + self._down - 1) // self._down
        return self._emit(max(n_end, self._n_out))

    def flush(self) -> np.ndarray:
        """Return the remaining output (the end of the signal, zero-padded); the stream is over."""
        n_total = -(-self._n_in * self._up // self._down)
        if self.from_rate == self.to_rate:
            return np.zeros(0, dtype=np.float32)
        self._buf = np.concatenate([self._buf, np.zeros(2 * self._half + 1, dtype=np.float32)])
        out = self._emit(max(n_total, self._n_out))
        self._buf = self._buf[:0]
        return out

    def _emit(self, n_end: int) -> np.ndarray:
        if n_end <= self._n_out:
            return np.zeros(0, dtype=np.float32)
        taps = 2 * self._half + 1
        windows = np.lib.stride_tricks.sliding_window_view(self._buf, taps)
        parts = []
        for n0 in range(self._n_out, n_end, _BLOCK_OUT):
            n = np.arange(n0, min(n0 + _BLOCK_OUT, n_end), dtype=np.int64)
            base = n * self._down // self._up  # input sample at or before output time
            phase = n * self._down % self._up
            rows = windows[base - self._half - self._buf_start]
            parts.append(np.einsum("ij,ij->i", rows, self._table[phase]))
        self._n_out = max(self._n_out, n_end)
        # keep what the next output's kernel still needs
        next_base = self._n_out * self._down // self._up
        drop = max(0, next_base - self._half - self._buf_start)
        self._buf = self._buf[drop:]
        self._buf_start += drop
        return np.concatenate(parts).astype(np.float32) if parts else np.zeros(0, dtype=np.float32)


def resample(x: np.ndarray, from_rate: int, to_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Resample a whole 1-D signal; the output has ceil(len(x) * to_rate / from_rate) samples."""
    x = np.asarray(x)
    if x.ndim != 1:
        raise ValueError(f"resample takes a 1-D signal, got shape {x.shape}; mix to mono first")
    r = Resampler(from_rate, to_rate)
    return np.concatenate([r.process(x), r.flush()])


def to_mono_float32(x: np.ndarray) -> np.ndarray:
    """int8/16/32, uint8 or float samples, [frames] or [frames, channels] -> [frames] float32 in [-1, 1]."""
    x = np.asarray(x)
    if x.dtype.kind == "u":
        bits = 8 * x.dtype.itemsize
        x = (x.astype(np.float32) - 2 ** (bits - 1)) / 2 ** (bits - 1)
    elif x.dtype.kind == "i":
        x = x.astype(np.float32) / 2 ** (8 * x.dtype.itemsize - 1)
    if x.ndim == 2:
        x = x.mean(axis=1)
    elif x.ndim != 1:
        raise ValueError(f"expected [frames] or [frames, channels] audio, got shape {x.shape}")
    return x.astype(np.float32, copy=False)


# ---------------------------------------------------------------------------------------------
# Files


def probe(path: str | os.PathLike) -> AudioInfo:
    """What the file holds, without decoding it (a 0 s file probes fine: duration_s == 0)."""
    path = _check_exists(path)
    if path.suffix.lower() in _SOUNDFILE_SUFFIXES:
        import soundfile as sf

        try:
            i = sf.info(str(path))
            return AudioInfo(path, i.frames / i.samplerate, i.samplerate, i.channels, i.subtype)
        except (sf.SoundFileError, RuntimeError):
            pass  # maybe another format with a misleading name: let FFmpeg try
    return _probe_av(path)


def _probe_av(path: Path) -> AudioInfo:
    import av

    try:
        with av.open(str(path)) as container:
            if not container.streams.audio:
                raise AudioFileError(f"{path}: contains no audio (no audio stream in the file)")
            stream = container.streams.audio[0]
            if stream.duration is not None and stream.time_base is not None:
                duration = float(stream.duration * stream.time_base)
            elif container.duration is not None:
                duration = container.duration / av.time_base
            else:  # e.g. webm from a browser recorder: count what decodes
                duration = sum(f.samples for f in container.decode(stream)) / stream.rate
            return AudioInfo(path, duration, stream.rate, stream.channels, stream.codec_context.codec.canonical_name)
    except av.FFmpegError as e:
        raise AudioFileError(_unreadable(path)) from e


def iter_audio(path: str | os.PathLike, chunk_s: float = 30.0) -> Iterator[np.ndarray]:
    """Decode a file incrementally into 16 kHz mono float32 chunks of chunk_s seconds (the last
    one shorter). Raises AudioFileError if the file is missing or empty (at once), or cannot be
    decoded or holds no audio (while iterating)."""
    if chunk_s <= 0:
        raise ValueError(f"chunk_s must be positive, got {chunk_s}")
    # checked now, not on the first next(): a missing file fails where the caller asked for it
    return _chunks(_check_exists(path), max(1, int(round(chunk_s * SAMPLE_RATE))))


def _chunks(path: Path, chunk: int) -> Iterator[np.ndarray]:
    pieces: list[np.ndarray] = []
    held = 0
    total = 0
    for piece in _decode(path):
        pieces.append(piece)
        held += piece.size
        while held >= chunk:
            joined = np.concatenate(pieces)
            yield joined[:chunk]
            total += chunk
            pieces, held = [joined[chunk:]], joined.size - chunk
    if held:
        total += held
        yield np.concatenate(pieces)
    if total == 0:
        raise AudioFileError(f"{path}: contains no audio (0 s); choose a file with speech in it")


def load_audio(path: str | os.PathLike) -> np.ndarray:
    """The whole file as 16 kHz mono float32 (for short files; long ones go through iter_audio)."""
    return np.concatenate(list(iter_audio(path, chunk_s=600.0)))


def _check_exists(path: str | os.PathLike) -> Path:
    path = Path(path)
    if not path.exists():
        raise AudioFileError(f"{path}: no such file; check the path")
    if path.is_dir():
        raise AudioFileError(f"{path}: is a folder, not an audio file")
    if path.stat().st_size == 0:
        raise AudioFileError(f"{path}: the file is empty (0 bytes)")
    return path


def _decode(path: Path) -> Iterator[np.ndarray]:
    if path.suffix.lower() in _SOUNDFILE_SUFFIXES:
        import soundfile as sf

        try:
            f = sf.SoundFile(str(path))
        except (sf.SoundFileError, RuntimeError):
            f = None  # not what the name says: let FFmpeg try
        if f is not None:
            with f:
                yield from _decode_soundfile(path, f)
            return
    yield from _decode_av(path)


def _decode_soundfile(path: Path, f) -> Iterator[np.ndarray]:
    log.debug("decoding %s with soundfile (%d Hz, %d ch, %s)", path, f.samplerate, f.channels, f.subtype)
    resampler = Resampler(f.samplerate, SAMPLE_RATE)
    block = max(1024, f.samplerate)  # 1 s: small blocks keep the peak memory low
    try:
        for x in _blocks(f, block):
            yield resampler.process(x.mean(axis=1))
    except RuntimeError as e:
        if resampler._n_in == 0:
            raise AudioFileError(f"{path}: could not decode audio ({e}); the file may be corrupt") from e
        log.warning("%s: decoding stopped after %.1f s (%s): the file is truncated or corrupt; what could be "
                    "decoded was used", path, resampler._n_in / f.samplerate, e)
    else:
        # A WAV's frames as its data chunk declares them (libsndfile counts those present); FLAC's from its
        # STREAMINFO, as libsndfile reads it.
        declared = _wav_declared_frames(path) or (f.frames if 0 < f.frames < 2**62 else None)
        if declared is not None:
            _warn_if_short(path, resampler._n_in / f.samplerate, declared / f.samplerate, exact=True)
    yield resampler.flush()


def _blocks(f, block: int, small: int = 1024) -> Iterator[np.ndarray]:
    """[frames, channels] blocks to the end; a block that fails to decode (a cut FLAC: "decoder lost sync") is
    read again from its start in pieces of ``small`` frames, so that what lies before the damage is kept (a
    second of it was lost with the whole block), and the error is raised after the last piece that decodes."""
    pos = 0
    while True:
        try:
            x = f.read(block, dtype="float32", always_2d=True)
        except RuntimeError:
            f.seek(pos)
            while True:
                x = f.read(small, dtype="float32", always_2d=True)  # raises at the damage
                if not len(x):
                    return
                pos += len(x)
                yield x
        if not len(x):
            return
        pos += len(x)
        yield x


def _wav_declared_frames(path: Path) -> int | None:
    """The frames a RIFF/WAVE file's data chunk declares (None: not a plain WAV, or a size left open)."""
    try:
        with open(path, "rb") as f:
            head = f.read(12)
            if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
                return None
            block_align = None
            while True:
                chunk = f.read(8)
                if len(chunk) < 8:
                    return None
                cid, size = chunk[:4], struct.unpack("<I", chunk[4:])[0]
                if cid == b"fmt " and size >= 16:
                    block_align = struct.unpack("<H", f.read(16)[12:14])[0]
                    f.seek(size - 16 + (size & 1), os.SEEK_CUR)
                elif cid == b"data":
                    if not block_align or size in (0, 0xFFFFFFFF):  # (0 or -1: written while streaming)
                        return None
                    return size // block_align
                else:
                    f.seek(size + (size & 1), os.SEEK_CUR)
    except OSError:
        return None


def _warn_if_short(path: Path, got_s: float, declared_s: float, exact: bool) -> None:
    """Say that a file ended before its header's length (exact: the header counts samples; else its duration
    may be an estimate, off by a few per cent)."""
    short_s = declared_s - got_s
    if short_s > (0.01 if exact else max(0.5, 0.05 * declared_s)):
        log.warning("%s: the file ends after %.1f s of the %.1f s its header declares: it is truncated (an "
                    "interrupted copy or download?); what is there was used", path, got_s, declared_s)


def _decode_av(path: Path) -> Iterator[np.ndarray]:
    import av

    try:
        container = av.open(str(path))
    except av.FFmpegError as e:
        raise AudioFileError(_unreadable(path)) from e
    with container:
        if not container.streams.audio:
            raise AudioFileError(f"{path}: contains no audio (no audio stream in the file)")
        stream = container.streams.audio[0]
        log.debug("decoding %s with PyAV (%s, %d Hz)", path, stream.codec_context.name, stream.rate)
        # keep the channels: we average them ourselves, as on the soundfile path
        resampler = av.AudioResampler(format="fltp", layout=None, rate=SAMPLE_RATE)
        decoded = 0
        try:
            for frame in container.decode(stream):
                for out in resampler.resample(frame):
                    x = out.to_ndarray().mean(axis=0).astype(np.float32)
                    decoded += x.size
                    yield x
        except av.FFmpegError as e:
            if decoded == 0:
                raise AudioFileError(f"{path}: could not decode audio ({e}); the file may be corrupt") from e
            log.warning("%s: decoding stopped after %.1f s (%s): the file is truncated or corrupt; what could "
                        "be decoded was used", path, decoded / SAMPLE_RATE, e)
        else:
            if stream.duration is not None and stream.time_base is not None:  # (an mp3's from its Xing frame count)
                _warn_if_short(path, decoded / SAMPLE_RATE, float(stream.duration * stream.time_base), exact=False)
        for out in resampler.resample(None):
            yield out.to_ndarray().mean(axis=0).astype(np.float32)


def _unreadable(path: Path) -> str:
    """A sentence for a file neither decoder could open, saying what it looks like instead."""
    with open(path, "rb") as f:
        head = f.read(4096)
    formats = "use a WAV, FLAC, OGG, MP3, M4A, MP4 or WebM file"
    if head[:4] in (b"RIFF", b"fLaC", b"OggS", b"FORM") or head[:3] == b"ID3":
        return f"{path}: could not decode it: it starts like an audio file but is truncated or corrupt"
    if _looks_like_text(head):
        return f"{path}: not an audio file (looks like text); {formats}"
    if head[:4] == b"%PDF" or head[:2] == b"PK":
        return f"{path}: not an audio file (looks like a document or archive); {formats}"
    return f"{path}: not an audio file (unrecognised format); {formats}"


def _looks_like_text(head: bytes) -> bool:
    if not head or b"\x00" in head:
        return False
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return sum(c.isprintable() or c in "\r\n\t" for c in text) >= 0.95 * len(text)
