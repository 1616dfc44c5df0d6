"""Tiny random Marian, NLLB-200 and M2M100 model folders laid out as on the Hugging Face hub.

Each folder holds what the real ones hold (config.json, generation_config.json, model.safetensors and
the tokenizer files of that family: source.spm/target.spm/vocab.json for Marian, tokenizer.json for
NLLB, sentencepiece.bpe.model/vocab.json for M2M100). The SentencePiece files are written with
protobuf from a tokenizers model trained here on a few sentences. Weights are random with a fixed
seed and a wide init so the next-token distributions are peaked (no near-ties between the torch
and onnxruntime arithmetic).
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from tokenizers import Tokenizer, models, pre_tokenizers, trainers

CORPUS = [
    "The cat sat on the mat.", "A quick brown fox jumps over the lazy dog.", "Where is the station?",
    "I would like a cup of tea, please.", "Die Katze sitzt auf der Matte.", "Wo ist der Bahnhof?",
    "Ich möchte bitte eine Tasse Tee.", "Le chat est assis sur le tapis.", "Où est la gare ?",
    "We translate speech and text in real time.", "Das Wetter ist heute schön.", "Il fait beau aujourd'hui.",
]
EOS_BIAS = 1.15
SENTENCES = ["The cat sat on the mat.", "Where is the station?", "Ich möchte bitte eine Tasse Tee.",
             "We translate text. It works well! Does it?"]
LANGS = ("en", "de", "fr")
NLLB_CODES = {"en": "eng_Latn", "de": "deu_Latn", "fr": "fra_Latn"}
DIMS = dict(d_model=32, encoder_layers=2, decoder_layers=2, encoder_attention_heads=4, decoder_attention_heads=4,
            encoder_ffn_dim=64, decoder_ffn_dim=64, max_position_embeddings=128, dropout=0.0,
            attention_dropout=0.0, activation_dropout=0.0, init_std=0.3, scale_embedding=True)


def _metaspace_trainer_tokenizer(model, trainer) -> Tokenizer:
    tok = Tokenizer(model)
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always", split=True)
    tok.train_from_iterator(CORPUS, trainer)
    return tok


def _spm_proto(pieces: list[tuple[str, float, int]], model_type: int) -> bytes:
    """A SentencePiece ModelProto: (piece, score, type) with type 1 normal, 2 unknown, 3 control."""
    from transformers.utils import sentencepiece_model_pb2_new as pb

    proto = pb.ModelProto()
    for piece, score, kind in pieces:
        p = proto.pieces.add()
        p.piece, p.score, p.type = piece, score, kind
    proto.trainer_spec.model_type = model_type  # 1 unigram, 2 BPE
    proto.normalizer_spec.name = "identity"
    proto.normalizer_spec.add_dummy_prefix = True
    proto.normalizer_spec.remove_extra_whitespaces = True
    return proto.SerializeToString()


def _favour_eos(model, bias: float):
    """Make the end of sentence look like a token the model writes in some sentences but not at their
    start (its output row, scaled by `bias`), so that a random model ends those sentences where it
    would have written that token: varied lengths instead of always running to max_length."""
    with torch.no_grad():
        ids = torch.randint(4, model.config.vocab_size - 8, (8, 7), generator=torch.Generator().manual_seed(0))
        out = model.generate(input_ids=ids, max_length=24, num_beams=1, do_sample=False, forced_eos_token_id=None,
                             forced_bos_token_id=None, bad_words_ids=None)[:, 1:].tolist()
        seen = [set(row[2:]) - {row[0]} for row in out]
        counts = {t: sum(t in s for s in seen) for t in set().union(*seen) if t >= 4}
        partial = [t for t, n in counts.items() if n < len(seen)] or list(counts)
        if not partial:  # every sentence repeats its first token: nothing to steer
            return model
        token = max(partial, key=lambda t: (counts[t], -t))
        eos = model.config.eos_token_id
        model.lm_head.weight[eos] = bias * model.lm_head.weight[token]
        if getattr(model, "final_logits_bias", None) is not None:
            model.final_logits_bias[0, eos] = model.final_logits_bias[0, token] + 0.5
    return model


def _save(model, gen: dict, folder: Path) -> None:
    from transformers import GenerationConfig

    model.save_pretrained(folder)
    GenerationConfig(**gen).save_pretrained(folder)


def make_marian(folder: Path, seed: int = 0, dims: dict | None = None, eos_bias: float | None = EOS_BIAS,
                filler_pieces: int = 0) -> Path:
    """opus-mt-en-de style: unigram source.spm/target.spm, vocab.json with </s>=0, <unk>=1, <pad> last.

    `filler_pieces` pads the vocabulary to a real model's size (opus-mt-en-de: 58 101 with 58 000 fillers);
    `eos_bias` None leaves the random model as it is (it then rarely ends a sentence)."""
    from transformers import MarianConfig, MarianMTModel

    folder.mkdir(parents=True, exist_ok=True)
    # Pieces from a BPE trainer (tokenizers' unigram trainer is not deterministic), scored so that
    # the unigram segmentation prefers fewer, longer pieces.
    tok = _metaspace_trainer_tokenizer(models.BPE(unk_token="<unk>"), trainers.BpeTrainer(
        vocab_size=110, special_tokens=["<unk>"]))
    bpe = json.loads(tok.to_str())["model"]["vocab"]
    normal = [(p, -1.0 - 0.001 * i) for i, p in enumerate(sorted(bpe, key=bpe.get)) if p != "<unk>"]
    normal += [(f"▁x{i}", -20.0) for i in range(filler_pieces)]
    spm = [("<unk>", 0.0, 2), ("<s>", 0.0, 3), ("</s>", 0.0, 3)] + [(p, s, 1) for p, s in normal]
    (folder / "source.spm").write_bytes(_spm_proto(spm, 1))
    (folder / "target.spm").write_bytes(_spm_proto(spm, 1))
    vocab = {"</s>": 0, "<unk>": 1}
    for p, _ in normal:
        vocab.setdefault(p, len(vocab))
    pad = len(vocab)
    vocab["<pad>"] = pad
    (folder / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False))
    (folder / "tokenizer_config.json").write_text(json.dumps({"tokenizer_class": "MarianTokenizer",
                                                             "source_lang": "en", "target_lang": "de"}))
    torch.manual_seed(seed)
    config = MarianConfig(vocab_size=pad + 1, decoder_vocab_size=pad + 1, pad_token_id=pad, eos_token_id=0,
                          decoder_start_token_id=pad, forced_eos_token_id=0, activation_function="swish",
                          **{**DIMS, "tie_word_embeddings": False, **(dims or {})})
    model = MarianMTModel(config).eval()
    with torch.no_grad():  # a non-zero logits bias, so the export must carry it
        model.final_logits_bias.normal_(0, 0.5)
    if eos_bias is not None:
        _favour_eos(model, eos_bias)
    _save(model, {"decoder_start_token_id": pad, "eos_token_id": 0, "pad_token_id": pad, "forced_eos_token_id": 0,
                  "bad_words_ids": [[pad]], "num_beams": 4, "max_length": 64}, folder)
    return folder


def make_nllb(folder: Path, seed: int = 1, dims: dict | None = None, eos_bias: float = EOS_BIAS) -> Path:
    """NLLB-200 style: tokenizer.json (BPE, Metaspace) with <s>=0 <pad>=1 </s>=2 <unk>=3 and xxx_Latn codes."""
    from transformers import M2M100Config, M2M100ForConditionalGeneration

    folder.mkdir(parents=True, exist_ok=True)
    specials = ["<s>", "<pad>", "</s>", "<unk>"]
    tok = _metaspace_trainer_tokenizer(models.BPE(unk_token="<unk>"), trainers.BpeTrainer(
        vocab_size=150, special_tokens=specials))
    tok.add_special_tokens([NLLB_CODES[c] for c in LANGS])
    tok.save(str(folder / "tokenizer.json"))
    (folder / "tokenizer_config.json").write_text(json.dumps({"tokenizer_class": "NllbTokenizer"}))
    torch.manual_seed(seed)
    config = M2M100Config(vocab_size=tok.get_vocab_size(), pad_token_id=1, bos_token_id=0, eos_token_id=2,
                          decoder_start_token_id=2, activation_function="relu", **{**DIMS, **(dims or {})})
    _save(_favour_eos(M2M100ForConditionalGeneration(config).eval(), eos_bias),
          {"decoder_start_token_id": 2, "bos_token_id": 0, "eos_token_id": 2, "pad_token_id": 1,
           "max_length": 64}, folder)
    return folder


def make_m2m100(folder: Path, seed: int = 2, dims: dict | None = None, eos_bias: float = EOS_BIAS) -> Path:
    """M2M100 style: SentencePiece BPE model + fairseq vocab.json, __xx__ codes after the vocabulary."""
    from transformers import M2M100Config, M2M100ForConditionalGeneration

    folder.mkdir(parents=True, exist_ok=True)
    tok = _metaspace_trainer_tokenizer(models.BPE(unk_token="<unk>"), trainers.BpeTrainer(
        vocab_size=150, special_tokens=["<unk>"]))
    data = json.loads(tok.to_str())["model"]
    bpe_vocab, merges = data["vocab"], data["merges"]
    merged = ["".join(m) if isinstance(m, list) else m.replace(" ", "") for m in merges]
    alphabet = [p for p in sorted(bpe_vocab, key=bpe_vocab.get) if p != "<unk>" and p not in merged]
    ranked = list(dict.fromkeys(merged)) + alphabet
    spm = [("<unk>", 0.0, 2), ("<s>", 0.0, 3), ("</s>", 0.0, 3)]
    spm += [(p, -float(i), 1) for i, p in enumerate(ranked)]
    (folder / "sentencepiece.bpe.model").write_bytes(_spm_proto(spm, 2))
    vocab = {"<s>": 0, "<pad>": 1, "</s>": 2, "<unk>": 3}
    for p in ranked:
        vocab.setdefault(p, len(vocab))
    (folder / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False))
    codes = [f"__{c}__" for c in LANGS]
    (folder / "special_tokens_map.json").write_text(json.dumps({"additional_special_tokens": codes}))
    (folder / "tokenizer_config.json").write_text(json.dumps({"tokenizer_class": "M2M100Tokenizer"}))
    torch.manual_seed(seed)
    config = M2M100Config(vocab_size=len(vocab) + len(codes), pad_token_id=1, bos_token_id=0, eos_token_id=2,
                          decoder_start_token_id=2, activation_function="relu", tie_word_embeddings=False, **{**DIMS, **(dims or {})})
    _save(_favour_eos(M2M100ForConditionalGeneration(config).eval(), eos_bias),
          {"decoder_start_token_id": 2, "bos_token_id": 0, "eos_token_id": 2, "pad_token_id": 1,
           "max_length": 64}, folder)
    return folder


MAKERS = {"marian": make_marian, "nllb": make_nllb, "m2m100": make_m2m100}

PAIRS = {"marian": ("en", "de"), "nllb": ("en", "fr"), "m2m100": ("de", "en")}  # what each test model translates
_BUILT: dict[tuple[str, str], tuple[Path, Path]] = {}


def built(tmp_path_factory, family: str, precision: str = "fp32") -> tuple[Path, Path]:
    """(Hugging Face folder, exported pack) of a tiny model, built once per test session."""
    from export.translation.pack import build_translation_pack

    key = (family, precision)
    if key not in _BUILT:
        root = tmp_path_factory.mktemp(f"mt-{family}-{precision}")
        source = MAKERS[family](root / "model")
        name = "opus-mt-en-de" if family == "marian" else f"tiny-{family}"
        _BUILT[key] = (source, build_translation_pack(source, root / name, precision, name))
    return _BUILT[key]


def hf_generate(source: Path, batch: list[list[int]], pad: int, eos: int, **kwargs) -> list[list[int]]:
    """transformers' generate on right-padded ids: each result without the start token, up to its first eos."""
    from transformers import AutoModelForSeq2SeqLM

    model = AutoModelForSeq2SeqLM.from_pretrained(source, attn_implementation="eager").eval()
    width = max(map(len, batch))
    ids = torch.full((len(batch), width), pad)
    mask = torch.zeros_like(ids)
    for row, seq in enumerate(batch):
        ids[row, : len(seq)], mask[row, : len(seq)] = torch.tensor(seq), 1
    with torch.no_grad():
        out = model.generate(input_ids=ids, attention_mask=mask, do_sample=False, **kwargs).tolist()
    results = []
    for seq in out:
        seq = seq[1:]
        results.append(seq[: seq.index(eos) + 1] if eos in seq else seq)
    return results
