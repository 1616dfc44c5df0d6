"""Text through the shared space: a pack's ``text_encoder_model.onnx`` feeds the Whisper decoder.

A pack trained with ``python -m export train --text-encoder-epochs N`` holds a text encoder whose output
takes the speech encoder's place in the decoder's cross-attention. So text goes in, and the decoder writes
it back (task ``transcribe``) or in English (task ``translate``, once trained on parallel text).

    states = encode_text(model, "Der Zug hat Verspätung.")
    result = model.decode_window(states, DecodeOptions(language="de", task="translate", without_timestamps=True))
    text = text_via_shared_space(model, "Der Zug hat Verspätung.", language="de", task="translate")
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from engine import runtime
from engine.errors import PackError
from engine.whisper.decoding import DecodeOptions
from engine.whisper.model import WhisperModel

TEXT_ENCODER_FILE = "text_encoder_model.onnx"


def has_text_encoder(pack_dir: str | Path) -> bool:
    return (Path(pack_dir) / TEXT_ENCODER_FILE).is_file()


def encode_text(model: WhisperModel, text: str) -> np.ndarray:
    """Text -> states [1, tokens, d_model] for ``model.decode_window`` (the same place audio states go)."""
    path = Path(model.pack.path) / TEXT_ENCODER_FILE
    if not path.is_file():
        raise PackError(f"{path}: this pack has no text encoder; train one with `python -m export train "
                        "--text-encoder-epochs N`")
    tokens = model.encode_text(text)
    if not tokens:
        raise ValueError("no text to encode")
    session = runtime.create_session(path, model.device, model.threads)
    (states,) = session.run(["last_hidden_state"], {"input_ids": np.array([tokens], dtype=np.int64)})
    return states.astype(np.float32, copy=False)


def text_via_shared_space(model: WhisperModel, text: str, language: str = "en", task: str = "transcribe",
                          beam_size: int = 1) -> str:
    """What the decoder writes from the text encoder's states of `text` (guards off: there is no audio)."""
    options = DecodeOptions(task=task, language=language, beam_size=beam_size, temperatures=(0.0,),
                            without_timestamps=True, compression_ratio_threshold=None, log_prob_threshold=None,
                            no_speech_threshold=None, suppress_blank=False)
    return model.decode_window(encode_text(model, text), options).text.strip()
