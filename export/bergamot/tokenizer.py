"""The pack's ``tokenizer.json`` for a Bergamot model: its SentencePiece vocabulary as a Hugging Face
Unigram tokenizer (ids are SentencePiece's own: Marian numbers tokens by the .spm), or the folder's own
``tokenizer.json`` when it carries one — either way checked against the model's vocabulary size.
"""

from __future__ import annotations

import logging
from pathlib import Path

from tokenizers import Tokenizer, models

from export.bergamot.marian_file import MarianFileError
from export.translation.tokenizer import _finish, _read_spm

log = logging.getLogger(__name__)


def spm_tokenizer(spm: Path) -> Tokenizer:
    """Unigram over every piece of the SentencePiece model in its id order, with its normaliser."""
    try:
        proto = _read_spm(spm)
    except ValueError as e:
        raise MarianFileError(f"{spm}: not a SentencePiece vocabulary ({e}); pass the model's vocab.*.spm") from e
    if proto.trainer_spec.model_type not in (0, 1):  # UNIGRAM (default 0 means unset → unigram)
        raise MarianFileError(f"{spm}: SentencePiece model type {proto.trainer_spec.model_type} (not unigram); "
                              "this importer reads unigram vocabularies, as Bergamot models use")
    table = [(p.piece, float(p.score)) for p in proto.pieces]
    unk = proto.trainer_spec.unk_id if proto.trainer_spec.HasField("unk_id") else 0
    return _finish(Tokenizer(models.Unigram(table, unk_id=unk, byte_fallback=False)), proto, [])


def pack_tokenizer(folder: Path, spm: Path | None, vocab_size: int) -> tuple[Tokenizer, Path]:
    """The tokenizer and the file it came from; raise MarianFileError naming the file whose size differs."""
    own = folder / "tokenizer.json"
    source = own if own.is_file() else spm
    if source is None:
        raise MarianFileError(f"{folder}: no vocab.*.spm (nor tokenizer.json) beside the model; the folder needs "
                              "the model's SentencePiece vocabulary")
    if source == own:
        try:
            tok = Tokenizer.from_file(str(own))
        except Exception as e:  # tokenizers raises a plain Exception on malformed JSON
            raise MarianFileError(f"{own}: unreadable tokenizer ({e})") from e
    else:
        tok = spm_tokenizer(source)
    size = tok.get_vocab_size(with_added_tokens=True)
    if size != vocab_size:
        raise MarianFileError(f"{source}: a vocabulary of {size} tokens, but the model has {vocab_size}: this vocab "
                              "belongs to another model")
    if spm is not None and source == own:
        expected = spm_tokenizer(spm)
        probe = "Parley checks 12 tokens, ações, naïve — “quoted” text!"
        if tok.encode(probe, add_special_tokens=False).ids != expected.encode(probe, add_special_tokens=False).ids:
            raise MarianFileError(f"{own}: segments text differently from {spm.name}; remove one of them")
    return tok, source
