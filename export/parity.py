"""Parity of an exported pack with the PyTorch model it came from.

Runs the torch model and the pack's onnxruntime sessions on the same log-mel input at several encoder
lengths and reports the largest absolute differences of encoder outputs, decoder logits (first step and
with past) and alignment-head attention, plus whether greedy decoding yields the same tokens.
"""

from __future__ import annotations

import dataclasses
import logging
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import onnxruntime as ort
import soundfile as sf
import torch

from export.merge_decoders import MERGED_FILE
from export.onnx_export import DECODER_FILE, DECODER_WITH_PAST_FILE, ENCODER_FILE
from export.whisper_model import N_SAMPLES, SAMPLE_RATE, Whisper, log_mel_spectrogram

log = logging.getLogger(__name__)

_ORT_TYPES = {"tensor(float)": np.float32, "tensor(float16)": np.float16, "tensor(int64)": np.int64,
              "tensor(int32)": np.int32, "tensor(bool)": np.bool_}


# --- speech ------------------------------------------------------------------------------------------

def resample_linear(audio: np.ndarray, sr_in: int, sr_out: int) -> np.ndarray:
    """Linear-interpolation resampling; good enough for synthetic test speech."""
    n_out = int(round(len(audio) * sr_out / sr_in))
    return np.interp(np.arange(n_out) * (sr_in / sr_out), np.arange(len(audio)), audio).astype(np.float32)


def synth_speech(text: str, voice: str = "en") -> np.ndarray:
    """16 kHz mono float32 speech from espeak-ng."""
    exe = shutil.which("espeak-ng")
    if exe is None:
        raise RuntimeError("espeak-ng is not installed; install it (apt-get install espeak-ng) to synthesise test speech")
    with tempfile.TemporaryDirectory(prefix="parley-tts-") as tmp:
        wav = Path(tmp) / "speech.wav"
        subprocess.run([exe, "-v", voice, "-w", str(wav), text], check=True, capture_output=True)
        audio, sr = sf.read(wav, dtype="float32", always_2d=True)
    return resample_linear(audio.mean(axis=1), sr, SAMPLE_RATE)


def mel_frames(audio: np.ndarray, n_mels: int, frames: int) -> np.ndarray:
    """Log-mel of the audio padded to 30 s, cut to `frames`: [1, n_mels, frames] float32."""
    mel = log_mel_spectrogram(torch.from_numpy(audio[:N_SAMPLES]), n_mels, padding=N_SAMPLES)
    return mel[:, :frames].numpy()[None]


# --- onnxruntime -------------------------------------------------------------------------------------

class OnnxWhisper:
    """The three sessions of a pack, fed by declared input names and types (fp16 packs included)."""

    def __init__(self, pack: Path, threads: int = 2):
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        opts.log_severity_level = 3

        def session(name: str) -> ort.InferenceSession:
            return ort.InferenceSession(str(pack / name), opts, providers=["CPUExecutionProvider"])

        self.encoder = session(ENCODER_FILE)
        self.merged = not (pack / DECODER_FILE).is_file() and (pack / MERGED_FILE).is_file()
        if self.merged:
            self.decoder = self.decoder_with_past = session(MERGED_FILE)
        else:
            self.decoder = session(DECODER_FILE)
            self.decoder_with_past = session(DECODER_WITH_PAST_FILE)

    @staticmethod
    def _run(sess: ort.InferenceSession, feeds: dict[str, np.ndarray], drop_empty: bool = False
             ) -> dict[str, np.ndarray]:
        typed = {i.name: np.asarray(feeds[i.name]).astype(_ORT_TYPES[i.type], copy=False) for i in sess.get_inputs()}
        names = [o.name for o in sess.get_outputs()]
        out = {n: np.asarray(v, dtype=np.float32) if v.dtype == np.float16 else v
               for n, v in zip(names, sess.run(names, typed))}
        # a merged decoder's step returns empty stand-ins for what only the first step makes (cross K/V)
        return {n: v for n, v in out.items() if v.size} if drop_empty else out

    def encode(self, mel: np.ndarray) -> np.ndarray:
        return self._run(self.encoder, {"input_features": mel})["last_hidden_state"]

    def _past_feeds(self, ids: np.ndarray, cache: dict[str, np.ndarray] | None, xa_width: int) -> dict:
        """What a merged decoder takes beyond the pair's inputs: the branch flag and the other branch's inputs."""
        past = [i for i in self.decoder.get_inputs() if i.name.startswith("past_key_values.")]
        if cache is None:
            empty = np.zeros((ids.shape[0], past[0].shape[1], 0, past[0].shape[3]), np.float32)
            return {**{i.name: empty for i in past}, "use_cache_branch": np.array([False])}
        return {"use_cache_branch": np.array([True]),
                "encoder_hidden_states": np.zeros((ids.shape[0], 1, xa_width), np.float32)}

    def first_step(self, ids: np.ndarray, xa: np.ndarray) -> dict[str, np.ndarray]:
        feeds = {"input_ids": ids, "encoder_hidden_states": xa}
        if self.merged:
            feeds.update(self._past_feeds(ids, None, xa.shape[-1]))
        return self._run(self.decoder, feeds)

    def next_step(self, ids: np.ndarray, cache: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        feeds = {"input_ids": ids, **cache}
        if self.merged:
            width = next(v for k, v in cache.items() if k.endswith("encoder.key"))
            feeds.update(self._past_feeds(ids, cache, width.shape[1] * width.shape[3]))
        return self._run(self.decoder_with_past, feeds, drop_empty=self.merged)

    def greedy(self, mel: np.ndarray, prompt: list[int], eot: int, max_tokens: int = 100) -> list[int]:
        xa = self.encode(mel)
        out = self.first_step(np.array([prompt], dtype=np.int64), xa)
        cache = {k.replace("present", "past_key_values"): v for k, v in out.items() if k.startswith("present")}
        tokens: list[int] = []
        while len(tokens) < max_tokens:
            nxt = int(out["logits"][0, -1].argmax())
            if nxt == eot:
                break
            tokens.append(nxt)
            out = self.next_step(np.array([[nxt]], dtype=np.int64), cache)
            cache.update({k.replace("present", "past_key_values"): v for k, v in out.items() if k.startswith("present")})
        return tokens


@torch.no_grad()
def greedy_torch(model: Whisper, mel: np.ndarray, prompt: list[int], eot: int, max_tokens: int = 100) -> list[int]:
    cross = model.decoder.cross_kv(model.encoder(torch.from_numpy(mel)))
    logits, past, _ = model.decoder.step(torch.tensor([prompt]), None, cross)
    tokens: list[int] = []
    while len(tokens) < max_tokens:
        nxt = int(logits[0, -1].argmax())
        if nxt == eot:
            break
        tokens.append(nxt)
        logits, past, _ = model.decoder.step(torch.tensor([[nxt]]), past, cross)
    return tokens


# --- the check ---------------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class LengthParity:
    frames: int
    encoder_max_abs: float  # largest |torch - onnx| of last_hidden_state
    encoder_scale: float  # largest |torch| of last_hidden_state, for scale (Whisper has outlier channels)
    logits_max_abs: float  # decoder_model logits over the prompt
    logits_with_past_max_abs: float  # decoder_with_past logits for two more tokens
    cross_attention_max_abs: float
    same_argmax: bool  # the next token after the prompt is the same


@dataclasses.dataclass(frozen=True)
class ParityReport:
    lengths: tuple[LengthParity, ...]
    torch_tokens: tuple[int, ...]  # greedy on the full 30 s window
    onnx_tokens: tuple[int, ...]

    @property
    def tokens_equal(self) -> bool:
        return self.torch_tokens == self.onnx_tokens

    def summary(self) -> str:
        rows = [f"{p.frames:5d} frames: encoder {p.encoder_max_abs:.2e} (of {p.encoder_scale:.0f}), logits {p.logits_max_abs:.2e}, "
                f"with past {p.logits_with_past_max_abs:.2e}, cross-attn {p.cross_attention_max_abs:.2e}, "
                f"argmax {'same' if p.same_argmax else 'DIFFERENT'}" for p in self.lengths]
        rows.append(f"greedy tokens {'identical' if self.tokens_equal else 'DIFFER'} "
                    f"({len(self.torch_tokens)} torch, {len(self.onnx_tokens)} onnx)")
        return "\n".join(rows)


@torch.no_grad()
def check_parity(model: Whisper, pack: Path, audio: np.ndarray, prompt: list[int], eot: int,
                 frame_lengths: tuple[int, ...] = (3000, 1000, 400), max_tokens: int = 60,
                 threads: int = 2) -> ParityReport:
    """Compare torch and onnxruntime on `audio` (16 kHz) at each encoder length."""
    model = model.float().eval()
    runner = OnnxWhisper(pack, threads)
    heads = model.alignment_heads
    results = []
    for frames in frame_lengths:
        mel = mel_frames(audio, model.dims.n_mels, frames)
        xa_t = model.encoder(torch.from_numpy(mel))
        xa_o = runner.encode(mel)
        ids = np.array([prompt], dtype=np.int64)
        cross = model.decoder.cross_kv(xa_t)
        logits_t, past_t, w_t = model.decoder.step(torch.from_numpy(ids), None, cross)
        out = runner.first_step(ids, xa_o)
        attn_t = torch.stack([w_t[layer][:, head] for layer, head in heads], dim=1).numpy()
        nxt = np.array([[int(logits_t[0, -1].argmax()), int(logits_t[0, -1].argsort()[-2])]], dtype=np.int64)
        logits2_t = model.decoder.step(torch.from_numpy(nxt), past_t, cross)[0]
        cache = {k.replace("present", "past_key_values"): v for k, v in out.items() if k.startswith("present")}
        logits2_o = runner.next_step(nxt, cache)["logits"]
        results.append(LengthParity(
            frames=frames,
            encoder_max_abs=float(np.abs(xa_t.numpy() - xa_o).max()),
            encoder_scale=float(xa_t.abs().max()),
            logits_max_abs=float(np.abs(logits_t.numpy() - out["logits"]).max()),
            logits_with_past_max_abs=float(np.abs(logits2_t.numpy() - logits2_o).max()),
            cross_attention_max_abs=float(np.abs(attn_t - out["cross_attentions"]).max()),
            same_argmax=bool(out["logits"][0, -1].argmax() == nxt[0, 0]),
        ))
        log.info("parity at %d frames: %s", frames, results[-1])
    mel = mel_frames(audio, model.dims.n_mels, frame_lengths[0])
    return ParityReport(
        lengths=tuple(results),
        torch_tokens=tuple(greedy_torch(model, mel, prompt, eot, max_tokens)),
        onnx_tokens=tuple(runner.greedy(mel, prompt, eot, max_tokens)),
    )


DEFAULT_TEXT = "The quick brown fox jumps over the lazy dog. Parley listens and writes down what was said."


def parity_of_pack(pack: Path, source: Path, text: str = DEFAULT_TEXT, threads: int = 2,
                   frame_lengths: tuple[int, ...] = (3000, 1000, 400)) -> ParityReport:
    """Parity of a built pack with the checkpoint it was built from, on espeak-ng speech of `text`."""
    import json

    from export.importers import load_any

    meta = json.loads((pack / "parley.json").read_text())
    t = meta["tokens"]
    prompt = [t["sot"]] + ([meta["languages"]["en"]] if meta["languages"] else []) + [t["transcribe"], t["no_timestamps"]]
    model, _ = load_any(source)
    torch.set_num_threads(threads)
    return check_parity(model, pack, synth_speech(text), prompt, t["eot"], frame_lengths, threads=threads)
