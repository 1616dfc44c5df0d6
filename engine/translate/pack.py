"""A text-translation pack on disk (Marian, NLLB-200, M2M100): what it holds, checked before it runs.

Our packs describe themselves in ``parley.json`` (docs/translation.md). Hub packs in the Optimum
layout (graphs at the top or in ``onnx/``, no parley.json) are described from ``config.json``,
``generation_config.json`` and ``tokenizer.json``; a Marian hub pack's languages come from its name
(``opus-mt-en-de``) or must be given.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import re
from pathlib import Path

from engine.errors import PackError
from engine.packs.files import TOKENIZER, check_files, graph_files, origin_checksums, verify_checksums
from engine.translate.languages import canonical

log = logging.getLogger(__name__)

_OPUS_NAME = re.compile(r"opus-mt-(?:tc-[a-z]+-)?([a-z]{2,3}(?:_[a-z]+)*)-([a-z]{2,3}(?:_[a-z]+)*)", re.I)
_NLLB_CODE = re.compile(r"^[a-z]{3}_[A-Z][a-z]{3}$")
_M2M_CODE = re.compile(r"^__([a-z]{2,3}(?:_[A-Za-z]+)?)__$")
_MARIAN_CODE = re.compile(r"^>>([a-z]{2,3}(?:_[A-Za-z]+)?)<<$")


def _hint(path: Path, architecture: str | None = None) -> str:
    if architecture == "bergamot":
        return ("rebuild it: `parley translate --build <pair> --force` (en-pt, pt-en) or "
                "`parley translate --import <model folder> --force`")
    return (f"rebuild it with `python -m export translation --from <model folder> --out {path}` "
            "or download it again (`parley translate --download <repo>`)")


@dataclasses.dataclass(frozen=True)
class TranslationPack:
    path: Path
    name: str
    architecture: str  # marian | nllb | m2m100
    precision: str  # fp32 | int8 | fp16 | unknown (hub packs)
    n_layers: int  # decoder layers
    n_heads: int  # decoder attention heads
    head_dim: int
    vocab_size: int
    max_positions: int
    pad: int
    eos: int
    unk: int | None
    decoder_start: int
    sources: tuple[str, ...]  # canonical codes (en, de, ...)
    targets: tuple[str, ...]
    language_tokens: dict[str, int]  # canonical code → id of its language token (NLLB, M2M100, multi-target Marian)
    target_forcing: str  # forced_bos (NLLB/M2M100) | source_prefix (multi-target Marian) | none
    source_prefix: bool  # the source starts with its language token (NLLB, M2M100)
    generation: dict  # defaults from generation_config.json: num_beams, max_length, bad_words_ids, ...
    files: dict[str, Path]
    checksums: dict[str, tuple[str | None, int | None]]

    @classmethod
    def load(cls, path: str | Path, sources: list[str] | None = None, targets: list[str] | None = None
             ) -> TranslationPack:
        """Read a pack folder; `sources`/`targets` override the languages (needed for hub Marian packs
        whose name does not say them). Raises PackError naming the missing or unreadable file."""
        path = Path(path)
        if not path.is_dir():
            raise PackError(f"{path}: translation pack folder not found; {_hint(path)}")
        meta_path = path / "parley.json"
        fields = _from_parley_json(path, meta_path) if meta_path.exists() else _from_hub(path)
        if sources:
            fields["sources"] = tuple(canonical(s) for s in sources)
        if targets:
            fields["targets"] = tuple(canonical(t) for t in targets)
        files = graph_files(path)
        if fields["generation"].get("shortlist"):  # Bergamot: the lexical shortlist beside the graphs
            files["shortlist"] = path / str(fields["generation"]["shortlist"])
        pack = cls(path=path, files=files, **fields)
        pack._check_files()
        return pack

    @property
    def pairs(self) -> list[tuple[str, str]]:
        return [(s, t) for s in self.sources for t in self.targets if s != t]

    def serves(self, source: str, target: str) -> bool:
        return (canonical(source), canonical(target)) in self.pairs

    def _check_files(self) -> None:
        check_files(self.path, self.files, self.checksums, "translation pack", _hint(self.path, self.architecture))

    def verify(self) -> None:
        """Each file's sha256 against parley.json (hub packs list none), once per file version (``.verified``):
        run before the graphs are opened, so a damaged copy is named instead of translating nonsense."""
        verify_checksums(self.path, self.checksums, "translation pack", _hint(self.path, self.architecture))


def _read_json(file: Path, required: bool = True) -> dict:
    try:
        return json.loads(file.read_text(encoding="utf-8"))
    except FileNotFoundError as e:
        if not required:
            return {}
        raise PackError(f"{file}: missing from the translation pack; {_hint(file.parent)}") from e
    except (OSError, ValueError) as e:
        raise PackError(f"{file}: unreadable ({e}); {_hint(file.parent)}") from e


def _canonical_tokens(tokens: dict[str, int]) -> dict[str, int]:
    out: dict[str, int] = {}
    for code, tid in tokens.items():
        out.setdefault(canonical(code), int(tid))
    return out


def _from_parley_json(path: Path, meta_path: Path) -> dict:
    meta = _read_json(meta_path)
    try:
        if meta.get("kind") != "translation":
            raise PackError(f"{meta_path}: a {meta.get('kind')!r} pack, not a text-translation pack")
        dims, tokens = meta["dims"], meta["tokens"]
        return dict(
            name=str(meta.get("name", path.name)), architecture=str(meta["architecture"]),
            precision=str(meta.get("precision", "unknown")), n_layers=int(dims["decoder_layers"]),
            n_heads=int(dims["decoder_heads"]), head_dim=int(dims["head_dim"]), vocab_size=int(dims["vocab_size"]),
            max_positions=int(dims["max_positions"]), pad=int(tokens["pad"]), eos=int(tokens["eos"]),
            unk=None if tokens.get("unk") is None else int(tokens["unk"]), decoder_start=int(tokens["decoder_start"]),
            sources=tuple(canonical(c) for c in meta["languages"]["source"]),
            targets=tuple(canonical(c) for c in meta["languages"]["target"]),
            language_tokens=_canonical_tokens(meta.get("language_tokens", {})),
            target_forcing=str(meta.get("target_forcing", "none")), source_prefix=bool(meta.get("source_prefix")),
            generation=dict(meta.get("generation", {})),
            checksums={str(k): (v.get("sha256"), v.get("bytes")) for k, v in meta.get("files", {}).items()})
    except (KeyError, TypeError, ValueError) as e:
        raise PackError(f"{meta_path}: incomplete pack description ({type(e).__name__}: {e}); "
                        f"{_hint(path)}") from e


def _from_hub(path: Path) -> dict:
    """What parley.json would say, from an Optimum export's config, generation config and tokenizer."""
    config = _read_json(path / "config.json")
    if config.get("model_type") not in ("marian", "m2m_100"):
        raise PackError(f"{path / 'config.json'}: model_type {config.get('model_type')!r} is not a text-translation "
                        "model Parley runs (marian, m2m_100 for NLLB-200 and M2M100); remove the folder")
    gen = _read_json(path / "generation_config.json", required=False)
    vocab = _read_json(path / TOKENIZER)
    pieces = {t["content"]: int(t["id"]) for t in vocab.get("added_tokens", [])}
    model_vocab = vocab.get("model", {}).get("vocab", {})
    if isinstance(model_vocab, list):  # Unigram: [[piece, score], ...] in id order
        pieces.update({p: i for i, (p, _) in enumerate(model_vocab) if p not in pieces})
    else:
        pieces.update({p: int(i) for p, i in model_vocab.items() if p not in pieces})
    model_type = config.get("model_type", "")
    try:
        heads = int(config["decoder_attention_heads"])
        common = dict(
            name=path.name, precision="unknown", n_layers=int(config["decoder_layers"]), n_heads=heads,
            head_dim=int(config["d_model"]) // heads, vocab_size=int(config["vocab_size"]),
            max_positions=int(config["max_position_embeddings"]), pad=int(config["pad_token_id"]),
            eos=int(gen.get("eos_token_id", config["eos_token_id"])), unk=pieces.get("<unk>"),
            decoder_start=int(gen.get("decoder_start_token_id", config["decoder_start_token_id"])),
            generation={k: v for k, v in {**config, **gen}.items() if k in (
                "num_beams", "max_length", "length_penalty", "early_stopping", "bad_words_ids",
                "forced_eos_token_id", "min_length")}, checksums=origin_checksums(path))
    except (KeyError, TypeError, ValueError) as e:
        raise PackError(f"{path / 'config.json'}: lacks a translation-model field ({e}); not a Marian/NLLB/M2M100 "
                        "pack in the Optimum layout") from e
    if model_type == "marian":
        codes = {m.group(1): tid for p, tid in pieces.items() if (m := _MARIAN_CODE.match(p))}
        m = _OPUS_NAME.search(path.name) or _OPUS_NAME.search(str(config.get("_name_or_path", "")))
        sources = tuple(canonical(c) for c in m.group(1).split("_")) if m else ()
        targets = tuple(canonical(c) for c in (codes or (m.group(2).split("_") if m else ())))
        if not m:
            log.warning("%s: a Marian pack whose name does not say its languages; pass them to load()", path)
        return dict(common, architecture="marian", sources=sources, targets=targets,
                    language_tokens=_canonical_tokens(codes), target_forcing="source_prefix" if codes else "none",
                    source_prefix=False)
    if model_type == "m2m_100":
        nllb = {p: tid for p, tid in pieces.items() if _NLLB_CODE.match(p)}
        m2m = {m.group(1): tid for p, tid in pieces.items() if (m := _M2M_CODE.match(p))}
        codes, arch = (nllb, "nllb") if len(nllb) >= len(m2m) else (m2m, "m2m100")
        if not codes:
            raise PackError(f"{path / TOKENIZER}: no language tokens (eng_Latn or __en__); not an NLLB/M2M100 tokenizer")
        langs = tuple(_canonical_tokens(codes))
        return dict(common, architecture=arch, sources=langs, targets=langs, language_tokens=_canonical_tokens(codes),
                    target_forcing="forced_bos", source_prefix=True)
    raise PackError(f"{path / 'config.json'}: model_type {model_type!r} is not a text-translation model "
                    "Parley runs (marian, m2m_100 for NLLB-200 and M2M100)")
