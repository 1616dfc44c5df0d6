"""A Whisper model pack on disk: what it holds, checked before anything runs it.

Our packs describe themselves in ``parley.json`` (dims, special tokens, languages, per-file sha256).
Hub packs in the Hugging Face Optimum layout lack it; the same facts come from ``config.json``,
``generation_config.json`` and ``tokenizer.json`` (and their encoder needs exactly 3000 frames).

Sizes are checked on every load; sha256 on demand (``verify(full=True)``), remembered in a
``.verified`` stamp keyed by each file's mtime and size so a pack is hashed once, not on every start.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from engine.errors import PackError
from engine.packs.catalogue import KNOWN_MODELS
from engine.packs.files import (STAMP, TOKENIZER, check_files, graph_files,  # noqa: F401 - STAMP
                                 origin_checksums, verify_checksums)


@dataclasses.dataclass(frozen=True)
class WhisperDims:
    n_mels: int
    n_audio_ctx: int  # encoder positions for 30 s (1500)
    n_audio_state: int
    n_audio_head: int
    n_audio_layer: int
    n_vocab: int
    n_text_ctx: int  # decoder positions (448)
    n_text_state: int
    n_text_head: int
    n_text_layer: int


@dataclasses.dataclass(frozen=True)
class SpecialTokens:
    eot: int
    sot: int
    translate: int
    transcribe: int
    sot_lm: int
    sot_prev: int
    no_speech: int
    no_timestamps: int
    timestamp_begin: int


def _rebuild_hint(name: str, folder: str | None = None) -> str:
    """How to get a good copy: build a known model again; import or download any other again, under the name
    of its folder."""
    if name in KNOWN_MODELS:
        return f"rebuild it with `parley models build {name}`"
    return (f"import it again (`parley models import <folder> --name {folder or name} --force`) or download it "
            "again (`parley models download <repo> --force`)")


@dataclasses.dataclass(frozen=True)
class WhisperPack:
    path: Path
    name: str
    precision: str  # fp32 | int8 | fp16 | unknown (hub packs)
    dynamic_frames: bool  # the encoder accepts any even frame count ≤ 3000
    dims: WhisperDims
    tokens: SpecialTokens
    languages: dict[str, int]  # language code → its token id, in the model's order
    suppress_tokens: tuple[int, ...]  # non-speech tokens, what suppress_tokens=-1 stands for
    begin_suppress_tokens: tuple[int, ...]
    alignment_heads: tuple[tuple[int, int], ...]  # (decoder layer, head) pairs for word timing
    is_multilingual: bool
    files: dict[str, Path]  # role (encoder, decoder, decoder_with_past, decoder_merged, tokenizer) → file
    checksums: dict[str, tuple[str | None, int | None]]  # file name → (sha256, bytes) from parley.json
    # The glossary terms this model was taught (Learn these words records them in parley.json, ``learned_terms``):
    # decoding neither prompts nor biases them again (engine.glossary.for_pack). () for a stock model.
    learned_terms: tuple[str, ...] = ()

    @classmethod
    def load(cls, path: str | Path, verify: bool = False) -> WhisperPack:
        """Read and check a pack folder (sizes always; sha256 too with verify=True).

        Raises PackError naming the missing or corrupt file and how to rebuild the pack.
        """
        path = Path(path)
        if not path.is_dir():
            raise PackError(f"{path}: model pack folder not found; build it with `parley models build whisper-base`")
        meta_path = path / "parley.json"
        pack = _from_parley_json(path, meta_path) if meta_path.exists() else _from_hub(path)
        pack._check_files()
        if verify:
            pack.verify(full=True)
        return pack

    # -- validation -------------------------------------------------------------------------------

    def _check_files(self) -> None:
        check_files(self.path, self.files, self.checksums, "model pack", _rebuild_hint(self.name, self.path.name))

    def verify(self, full: bool = True) -> None:
        """Check sizes, and with full=True each file's sha256 against parley.json (hub packs list
        none). Files already hashed at their current mtime and size are skipped (``.verified``)."""
        self._check_files()
        if not full:
            return
        verify_checksums(self.path, self.checksums, "model pack", _rebuild_hint(self.name, self.path.name))


def _read_json(file: Path, name: str) -> dict:
    try:
        return json.loads(file.read_text(encoding="utf-8"))
    except FileNotFoundError as e:
        raise PackError(f"{file}: missing from the model pack; {_rebuild_hint(name)}") from e
    except (OSError, ValueError) as e:
        raise PackError(f"{file}: unreadable ({e}); {_rebuild_hint(name)}") from e


def _from_parley_json(path: Path, meta_path: Path) -> WhisperPack:
    meta = _read_json(meta_path, path.name)
    name = str(meta.get("name", path.name))
    try:
        if meta.get("kind", "whisper") != "whisper":
            raise PackError(f"{meta_path}: a {meta['kind']!r} pack, not a Whisper speech model")
        dims = WhisperDims(**{f.name: int(meta["dims"][f.name]) for f in dataclasses.fields(WhisperDims)})
        tokens = SpecialTokens(**{f.name: int(meta["tokens"][f.name]) for f in dataclasses.fields(SpecialTokens)})
        languages = {str(k): int(v) for k, v in meta.get("languages", {}).items()}
        checksums = {str(k): (v.get("sha256"), v.get("bytes")) for k, v in meta.get("files", {}).items()}
        return WhisperPack(
            path=path, name=name, precision=str(meta.get("precision", "unknown")),
            dynamic_frames=bool(meta.get("dynamic_frames", False)), dims=dims, tokens=tokens,
            languages=languages, suppress_tokens=tuple(int(t) for t in meta.get("suppress_tokens", ())),
            begin_suppress_tokens=tuple(int(t) for t in meta.get("begin_suppress_tokens", ())),
            alignment_heads=tuple((int(a), int(b)) for a, b in meta.get("alignment_heads", ())),
            is_multilingual=bool(meta.get("is_multilingual", len(languages) > 1)),
            files=graph_files(path), checksums=checksums,
            learned_terms=tuple(str(t) for t in meta.get("learned_terms", ())))
    except (KeyError, TypeError, ValueError) as e:
        raise PackError(f"{meta_path}: incomplete pack description ({type(e).__name__}: {e}); "
                        f"{_rebuild_hint(name)}") from e


def _from_hub(path: Path) -> WhisperPack:
    """Derive what parley.json would say from a Hugging Face Optimum export (and its files' sizes and sha256 from
    the origin file an import or download wrote)."""
    name = path.name
    config = _read_json(path / "config.json", name)
    gen = _read_json(path / "generation_config.json", name)
    vocab = _read_json(path / TOKENIZER, name)
    added = {t["content"]: int(t["id"]) for t in vocab.get("added_tokens", [])}
    model_vocab = vocab.get("model", {}).get("vocab", {})

    def tok(*names: str) -> int:
        for n in names:
            if n in added:
                return added[n]
            if n in model_vocab:
                return int(model_vocab[n])
        raise PackError(f"{path / TOKENIZER}: no {names[0]} token; not a Whisper tokenizer")

    def given(table: dict, key: str, *names: str) -> int:
        return int(table[key]) if key in table else tok(*names)

    try:
        dims = WhisperDims(
            n_mels=int(config["num_mel_bins"]), n_audio_ctx=int(config["max_source_positions"]),
            n_audio_state=int(config["d_model"]), n_audio_head=int(config["encoder_attention_heads"]),
            n_audio_layer=int(config["encoder_layers"]), n_vocab=int(config["vocab_size"]),
            n_text_ctx=int(config["max_target_positions"]), n_text_state=int(config["d_model"]),
            n_text_head=int(config["decoder_attention_heads"]), n_text_layer=int(config["decoder_layers"]))
        no_timestamps = given(gen, "no_timestamps_token_id", "<|notimestamps|>")
        task_to_id = gen.get("task_to_id", {})
        tokens = SpecialTokens(
            eot=tok("<|endoftext|>"), sot=given(gen, "decoder_start_token_id", "<|startoftranscript|>"),
            translate=given(task_to_id, "translate", "<|translate|>"),
            transcribe=given(task_to_id, "transcribe", "<|transcribe|>"),
            sot_lm=tok("<|startoflm|>"), sot_prev=given(gen, "prev_sot_token_id", "<|startofprev|>"),
            no_speech=tok("<|nospeech|>", "<|nocaptions|>"), no_timestamps=no_timestamps,
            timestamp_begin=no_timestamps + 1)
        languages = {k.strip("<|>"): int(v) for k, v in gen.get("lang_to_id", {}).items()}
        heads = gen.get("alignment_heads") or []
    except (KeyError, TypeError, ValueError) as e:
        raise PackError(f"{path}: config.json/generation_config.json lack a Whisper field ({e}); "
                        "not a Whisper pack in the Optimum layout") from e
    is_multilingual = bool(gen.get("is_multilingual", len(languages) > 1))
    checksums = origin_checksums(path)  # what an import or download recorded of each file
    return WhisperPack(
        path=path, name=name, precision="unknown", dynamic_frames=False, dims=dims, tokens=tokens,
        languages=languages, suppress_tokens=tuple(int(t) for t in gen.get("suppress_tokens") or ()),
        begin_suppress_tokens=tuple(int(t) for t in gen.get("begin_suppress_tokens") or ()),
        alignment_heads=tuple((int(a), int(b)) for a, b in heads), is_multilingual=is_multilingual,
        files=graph_files(path), checksums=checksums)
