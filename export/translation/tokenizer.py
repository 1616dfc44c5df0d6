"""One ``tokenizer.json`` (Hugging Face tokenizers) for a translation pack, from what a model folder holds.

- A folder with ``tokenizer.json`` (NLLB-200 on the hub): copied as it is.
- Marian (OPUS-MT): ``source.spm`` + ``target.spm`` (SentencePiece unigram) + ``vocab.json`` (one
  id table for both sides). The source model segments, ``vocab.json`` numbers the pieces. The
  result is a Unigram model over ``vocab.json``'s ids scored by ``source.spm``; pieces only the
  target model knows get a score so low that the source side never picks them, and decoding reads
  ids back through ``vocab.json`` (pieces joined, ``▁`` becomes a space), as MarianTokenizer does.
- M2M100: ``sentencepiece.bpe.model`` (SentencePiece BPE) + ``vocab.json``: a BPE model over
  ``vocab.json``'s ids whose merges are ranked by the SentencePiece piece scores; the language
  tokens ``__xx__`` follow the vocabulary, as M2M100Tokenizer numbers them.

Pieces that SentencePiece knows and ``vocab.json`` does not would become ``<unk>`` either way.
The SentencePiece files are read with protobuf (the ``sentencepiece`` package is not needed).
"""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path

from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers

log = logging.getLogger(__name__)

NLLB_CODE = re.compile(r"^[a-z]{3}_[A-Z][a-z]{3}$")  # eng_Latn
M2M_CODE = re.compile(r"^__([a-z]{2,3}(?:_[A-Za-z]+)?)__$")  # __en__
MARIAN_CODE = re.compile(r"^>>([a-z]{2,3}(?:_[A-Za-z]+)?)<<$")  # >>fra<< (multi-target OPUS-MT)
_UNREACHABLE = -1e4  # score of a piece the source SentencePiece model lacks


def _read_spm(path: Path):
    try:
        from transformers.utils import sentencepiece_model_pb2_new as pb
    except ImportError as e:  # pragma: no cover - transformers is an export dependency
        raise RuntimeError(f"{path}: reading SentencePiece models needs transformers' protobuf schema: {e}") from e
    proto = pb.ModelProto()
    try:
        proto.ParseFromString(path.read_bytes())
    except Exception as e:  # noqa: BLE001 - protobuf's DecodeError and friends
        raise ValueError(f"{path}: not a SentencePiece model ({e})") from e
    if not proto.pieces:
        raise ValueError(f"{path}: SentencePiece model without pieces")
    return proto


def _normalizer(proto) -> normalizers.Normalizer | None:
    steps = []
    charsmap = proto.normalizer_spec.precompiled_charsmap
    if charsmap:
        steps.append(normalizers.Precompiled(charsmap))
    if proto.normalizer_spec.remove_extra_whitespaces or not proto.normalizer_spec.HasField("remove_extra_whitespaces"):
        steps += [normalizers.Strip(left=True, right=True), normalizers.Replace(Regex(r" {2,}"), " ")]
    return normalizers.Sequence(steps) if steps else None


def _finish(tok: Tokenizer, proto, specials: list[str]) -> Tokenizer:
    tok.normalizer = _normalizer(proto)
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always", split=True)
    tok.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="always", split=True)
    tok.add_special_tokens([AddedToken(s, special=True, normalized=False) for s in specials])
    return tok


def _vocab(path: Path) -> dict[str, int]:
    try:
        vocab = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise ValueError(f"{path}: unreadable vocabulary ({e})") from e
    ids = sorted(vocab.values())
    if ids != list(range(len(ids))):
        raise ValueError(f"{path}: ids are not 0..{len(ids) - 1} without gaps")
    return {str(k): int(v) for k, v in vocab.items()}


def marian_tokenizer(folder: Path, unk: str = "<unk>") -> Tokenizer:
    """Unigram over vocab.json's ids, scored by source.spm."""
    proto = _read_spm(folder / "source.spm")
    vocab = _vocab(folder / "vocab.json")
    if unk not in vocab:
        raise ValueError(f"{folder / 'vocab.json'}: no {unk} token")
    scores = {p.piece: p.score for p in proto.pieces if p.type in (1, 4)}  # NORMAL, USER_DEFINED
    low = min(scores.values(), default=0.0) + _UNREACHABLE
    pieces = sorted(vocab.items(), key=lambda kv: kv[1])
    table = [(piece, float(scores.get(piece, low))) for piece, _ in pieces]
    tok = Tokenizer(models.Unigram(table, unk_id=vocab[unk], byte_fallback=False))
    specials = [p for p, _ in pieces if p in ("<pad>", "</s>", "<s>", unk) or MARIAN_CODE.match(p)]
    missing = sum(1 for p in scores if p not in vocab)
    if missing:
        log.info("%s: %d source pieces are not in vocab.json (they become %s)", folder.name, missing, unk)
    return _finish(tok, proto, specials)


def _bpe_merges(vocab: dict[str, int], order: dict[str, float]) -> list[tuple[str, str]]:
    """Merges (a, b) -> a+b for every piece of the vocabulary, ranked by that piece's SentencePiece score."""
    ranked = []
    for piece in vocab:
        if len(piece) < 2 or piece not in order:
            continue
        for cut in range(1, len(piece)):
            left, right = piece[:cut], piece[cut:]
            if left in vocab and right in vocab:
                ranked.append((-order[piece], vocab[left], vocab[right], left, right))
    ranked.sort()
    return [(left, right) for _, _, _, left, right in ranked]


def m2m100_tokenizer(folder: Path, languages: list[str], unk: str = "<unk>") -> Tokenizer:
    """BPE over vocab.json's ids (merges ranked by the SentencePiece scores) plus ``__xx__`` language tokens."""
    proto = _read_spm(folder / "sentencepiece.bpe.model")
    vocab = _vocab(folder / "vocab.json")
    scores = {p.piece: p.score for p in proto.pieces if p.type in (1, 4)}
    tok = Tokenizer(models.BPE(vocab, _bpe_merges(vocab, scores), unk_token=unk, fuse_unk=True))
    specials = [p for p in ("<s>", "<pad>", "</s>", unk) if p in vocab]
    tok = _finish(tok, proto, specials)
    codes = [f"__{code}__" for code in languages]
    tok.add_special_tokens([AddedToken(c, special=True, normalized=False) for c in codes])
    expected = list(range(len(vocab), len(vocab) + len(codes)))
    got = [tok.token_to_id(c) for c in codes]
    if got != expected:
        raise ValueError(f"{folder}: language tokens got ids {got[:3]}…, expected {expected[:3]}…")
    return tok


def build_tokenizer(folder: Path, architecture: str, languages: list[str]) -> Tokenizer:
    """The pack's tokenizer for a Hugging Face model folder (see the module docstring)."""
    if (folder / "tokenizer.json").is_file():
        return Tokenizer.from_file(str(folder / "tokenizer.json"))
    if (folder / "source.spm").is_file() and (folder / "vocab.json").is_file():
        if (folder / "target.spm").is_file() and (folder / "target.spm").read_bytes() != (folder / "source.spm").read_bytes():
            log.info("%s: target.spm differs from source.spm; target ids are decoded through vocab.json", folder.name)
        return marian_tokenizer(folder)
    if (folder / "sentencepiece.bpe.model").is_file() and (folder / "vocab.json").is_file():
        return m2m100_tokenizer(folder, languages)
    raise FileNotFoundError(f"{folder}: no tokenizer.json, source.spm + vocab.json (Marian) or "
                            f"sentencepiece.bpe.model + vocab.json (M2M100) to build the {architecture} tokenizer from")


def language_tokens(tok: Tokenizer) -> dict[str, dict[str, int]]:
    """Language tokens the vocabulary holds, by style: {"nllb": {"eng_Latn": id}, "m2m100": {"en": id}, "marian": {"fra": id}}."""
    found: dict[str, dict[str, int]] = {"nllb": {}, "m2m100": {}, "marian": {}}
    for piece, tid in tok.get_vocab(with_added_tokens=True).items():
        if NLLB_CODE.match(piece):
            found["nllb"][piece] = tid
        elif m := M2M_CODE.match(piece):
            found["m2m100"][m.group(1)] = tid
        elif m := MARIAN_CODE.match(piece):
            found["marian"][m.group(1)] = tid
    return {k: dict(sorted(v.items(), key=lambda kv: kv[1])) for k, v in found.items()}
