"""Whisper speech recognition and speech translation on onnxruntime.

Public API (stable; the CLI, the live session and the app use it):

    WhisperModel.load(pack_dir, device="auto", threads=None) -> WhisperModel
        .pack, .provider, .device, .tokenizer, .languages
        .transcribe(audio | path, TranscribeOptions(), progress=None, cancel=None) -> Transcript
        .detect_language(audio_or_mel) -> (code, {code: probability})
        .encode(mel) -> audio states;  .decode_window(states, DecodeOptions, prompt_tokens) -> DecodingResult
    Transcript(segments, language, language_probability, duration_s); Segment; Word
"""

from engine.whisper.decoding import DecodeOptions
from engine.whisper.model import WhisperModel
from engine.whisper.results import DecodingResult, Segment, Transcript, Word
from engine.whisper.transcribe import TranscribeOptions

__all__ = ["WhisperModel", "TranscribeOptions", "DecodeOptions", "Transcript", "Segment", "Word", "DecodingResult"]
