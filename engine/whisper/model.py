"""``WhisperModel``: a loaded pack, the public entry point to speech recognition.

    model = WhisperModel.load(pack_dir, device="auto", threads=None)
    transcript = model.transcribe("talk.mp3", TranscribeOptions(language=None, task="transcribe"))
    code, probs = model.detect_language(audio)

Lower level, for the live session: ``encode(mel)`` and ``decode_window(audio_states, DecodeOptions,
prompt_tokens)``.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from engine import runtime
from engine.errors import LanguageError
from engine.features import N_SAMPLES, log_mel_spectrogram
from engine.packs.whisper_pack import WhisperPack
from engine.seq2seq import DecoderSessions
from engine.whisper import window
from engine.whisper.decoding import DecodeOptions
from engine.whisper.results import DecodingResult, Transcript
from engine.whisper.runner import Decoder, Encoder
from engine.whisper.tokenizer import WhisperTokenizer

log = logging.getLogger(__name__)


class WhisperModel:
    """A Whisper pack's sessions on one device. Attributes: ``pack`` (WhisperPack), ``tokenizer``,
    ``device`` (what was asked: auto/cpu/cuda), ``provider`` (the onnxruntime execution provider that
    actually runs, e.g. ``CPUExecutionProvider``), ``device_reason`` (why that provider), ``threads``."""

    def __init__(self, pack: WhisperPack, device: str = "auto", threads: int | None = None,
                 io_binding: bool | None = None):
        self.pack = pack
        self.device = device
        self.threads = threads
        self.tokenizer = WhisperTokenizer.from_pack(pack)
        _, self.device_reason = runtime.resolve_device(device)
        files = pack.files
        enc = runtime.create_session(files["encoder"], device, threads)
        self.provider = runtime.provider_of(enc)
        on_cuda = self.provider == runtime.CUDA
        self.encoder = Encoder(enc, pack)
        self.decoder = Decoder(pack, DecoderSessions.open(files, device, threads),
                               io_binding=on_cuda if io_binding is None else io_binding,
                               device_type="cuda" if on_cuda else "cpu")
        self._lock = threading.Lock()  # sessions are thread-safe, but one decode at a time keeps RAM flat
        log.info("loaded %s (%s) on %s", pack.path, pack.precision, self.provider)

    @classmethod
    def load(cls, pack_dir: str | Path, device: str = "auto", threads: int | None = None,
             io_binding: bool | None = None) -> WhisperModel:
        """Open a pack folder (ours or a hub Optimum export). Checks its files (sizes, and sha256 once
        per file change) and raises PackError naming a missing or corrupt one. device: auto|cpu|cuda
        (cuda without a working CUDA provider warns and runs on the CPU; see ``provider``). threads:
        onnxruntime intra-op threads (None: all cores). io_binding: keep the K/V cache as device
        values (default: on CUDA only)."""
        pack = WhisperPack.load(pack_dir)
        pack.verify(full=True)
        return cls(pack, device, threads, io_binding)

    # -- languages --------------------------------------------------------------------------------

    @property
    def languages(self) -> list[str]:
        """Language codes the pack knows, in the model's order."""
        return list(self.pack.languages) or ["en"]

    def check_language(self, code: str | None) -> str | None:
        """The code if the pack knows it (None passes: detect); else LanguageError listing valid ones."""
        if code is None:
            return None
        code = code.strip().lower()
        if code in self.pack.languages or not self.pack.languages and code == "en":
            return code
        common = [c for c in ("en", "de", "fr", "es", "it", "zh", "ja", "ru", "pt", "nl") if c in self.pack.languages]
        raise LanguageError(f"unknown language code {code!r} for {self.pack.name}; use one of "
                            f"{', '.join(common or self.languages[:10])} … ({len(self.languages)} in all), or auto")

    def detect_language(self, audio_or_mel: np.ndarray) -> tuple[str, dict[str, float]]:
        """(most likely code, {code: probability} sorted high to low) from the first 30 s.

        Takes 16 kHz mono float32 audio (1-D) or a log-mel [n_mels, frames]."""
        x = np.asarray(audio_or_mel)
        if x.ndim == 1:
            x = log_mel_spectrogram(x[:N_SAMPLES].astype(np.float32, copy=False), self.pack.dims.n_mels)
        if x.ndim != 2 or x.shape[0] != self.pack.dims.n_mels:
            raise ValueError(f"expected audio samples (1-D) or a log-mel [{self.pack.dims.n_mels}, frames], "
                             f"got shape {x.shape}")
        if not self.tokenizer.multilingual:
            return "en", {"en": 1.0}
        with self._lock:
            probs = window.detect_language(self.decoder, self.tokenizer, self.encode(x[:, :3000]))
        return next(iter(probs)), probs

    # -- low level --------------------------------------------------------------------------------

    def encode(self, mel: np.ndarray) -> np.ndarray:
        """log-mel [n_mels, frames] (≤ 3000; a fixed-size pack gets it padded to 3000) → audio
        states [1, frames/2, d_model]."""
        return self.encoder(mel)

    def decode_window(self, audio_states: np.ndarray, options: DecodeOptions = DecodeOptions(),
                      prompt_tokens: Sequence[int] = (), num_frames: int | None = None,
                      time_offset_s: float = 0.0, last_speech_s: float = 0.0,
                      cancel: threading.Event | None = None) -> DecodingResult:
        """Decode one encoded window with temperature fallback and the no-speech/repetition guards.

        prompt_tokens: text tokens of what came before (goes after <|startofprev|>). num_frames: mel
        frames of real audio in the window (default: all the encoder saw). Segment (and, with
        options.word_timestamps, word) times are seconds, time_offset_s added. cancel set: CancelledError at the
        next decoder step."""
        self.check_language(options.language)
        with self._lock:
            return window.decode_window(self.decoder, self.tokenizer, self.pack.suppress_tokens,
                                        self.pack.dims.n_text_ctx, audio_states, options, prompt_tokens,
                                        num_frames, time_offset_s, last_speech_s=last_speech_s, cancel=cancel)

    def encode_text(self, text: str) -> list[int]:
        """Text tokens for a prompt (e.g. committed text): ``" " + text.strip()`` as Whisper does."""
        return self.tokenizer.encode(" " + text.strip()) if text.strip() else []

    # -- files ------------------------------------------------------------------------------------

    def transcribe(self, audio: np.ndarray | str | Path, options=None,
                   progress: Callable[[float, float], None] | None = None,
                   cancel: threading.Event | None = None) -> Transcript:
        """Transcribe (or translate to English) a file or 16 kHz mono float32 samples; a finished
        Transcript. Long files are decoded 30 s at a time (memory stays bounded). progress(done_s,
        total_s) after each window; cancel set → CancelledError. Raises AudioFileError for unreadable
        files and LanguageError for an unknown options.language."""
        from engine.whisper.transcribe import TranscribeOptions, transcribe

        return transcribe(self, audio, options or TranscribeOptions(), progress, cancel)
