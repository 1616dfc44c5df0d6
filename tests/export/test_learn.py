"""Learn these words, end to end on a tiny Whisper with real weights: a model that got worse is refused with the
reason and the current model kept (kept aside only when asked, to be measured); θ₀ and the Fisher weights stay
the stock model's across improvements; a learned pack lists the terms it learned, its base pack's too.

The tiny model's vocabulary is the words of every sentence Parley writes (one token a word), and the "current"
model has first been trained until it transcribes the general English clips: so "general WER" means something
for it, and a fine-tune that wrecks it can be caught.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
from pathlib import Path

import pytest
import torch
from tokenizers import Regex, Tokenizer, models, normalizers, pre_tokenizers

from engine import learn_words as lw
from engine.glossary import parse_glossary
from engine.metrics import normalize_text
from export.train.base import load_base
from export.train.data import TargetTokenizer, load_examples
from engine.packs.whisper_pack import WhisperPack
from export.train.learn import REPORT, LearnOptions, install, learn, learned_terms, stock_source
from export.train.loop import fine_tune
from export.train.loss import parameter_distance
from export.train.options import TrainOptions
from export.whisper_model import ModelDims, new_model

from tests.export.tiny import SPECIALS, TINY, save_hf

GLOSSARY = parse_glossary("Quillbrook\nZyrtec = zeer tech\n")
OPTIONS = LearnOptions(per_term=3, validation_per_term=2, progress=False)


def words_tokenizer(path: Path, words: list[str]) -> Path:
    """One token per normalised word (engine.metrics.normalize_text's rules), then Whisper's special tokens."""
    vocab = {w: i for i, w in enumerate(words)}
    vocab.update({tok: len(words) + i for i, tok in enumerate(SPECIALS)})
    tok = Tokenizer(models.WordLevel(vocab, unk_token=words[0]))
    tok.normalizer = normalizers.Sequence([normalizers.Lowercase(), normalizers.Replace(Regex("['’]"), ""),
                                           normalizers.Replace(Regex(r"[^\w\s<|>]"), " ")])
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tok.save(str(path))
    return path


def save(model, folder: Path, words: list[str]) -> Path:
    save_hf(model, folder)
    words_tokenizer(folder / "tokenizer.json", words)
    return folder


def digest(folder: Path) -> str:
    return hashlib.sha256(b"".join(p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file())).hexdigest()


@pytest.fixture(scope="module")
def current(tmp_path_factory) -> Path:
    """A tiny Whisper trained until it writes the general clips (the 'current' model, also the stock one)."""
    torch.set_num_threads(2)
    corpus = lw.write_sentences(GLOSSARY, OPTIONS.per_term, OPTIONS.validation_per_term)
    texts = [u.text for u in corpus.train + corpus.validation + corpus.fisher + corpus.gate]
    words = ["<unk>"] + sorted({w for t in texts for w in normalize_text(t).split()})
    dims = ModelDims(**{**TINY.as_dict(), "n_vocab": len(words) + len(SPECIALS)})
    root = tmp_path_factory.mktemp("learn")
    folder = save(new_model(dims, seed=5), root / "random", words)
    model, vocab, _ = load_base(folder)
    tok = TargetTokenizer(vocab)
    speech = root / "speech"
    lw.speak_all(corpus.fisher + corpus.gate, speech)
    general, problems = load_examples(speech, dims.n_mels, tok, "en", 100)
    assert not problems and len(general) == len(corpus.fisher) + len(corpus.gate)
    fine_tune(model, tok, general, [], TrainOptions(alpha=1.0, lr=3e-3, epochs=40, batch_size=8, held_out=0.0,
                                                    trainable="decoder", progress=False, checkpoint_every=10_000),
              root / "work")
    return save(model, root / "current", words)


def test_a_model_that_got_worse_is_refused_with_the_reason_and_the_current_one_kept(current, tmp_path):
    before = digest(current)
    out = tmp_path / "packs" / "tiny-learned-fp32"
    # no pull back (alpha 1) and a learning rate 200 times the recipe's: the terms are drilled in, English is lost
    wreck = dataclasses.replace(OPTIONS, alpha=1.0, lr=1e-2, epochs=3)
    kept = tmp_path / "measure" / "tiny-refused-fp32"  # a bench asks to measure the refused model
    report = learn(current, out, GLOSSARY, options=wreck, precision="fp32", speech_dir=tmp_path / "speech",
                   keep_refused=kept)
    assert report.current.general < 0.25  # the current model writes the general clips
    assert report.candidate.general > report.current.general + 0.005  # and the learned one got worse at them
    assert not report.installed and report.pack is None
    assert report.reason.startswith("not installed: ") and report.reason.endswith("the current model is kept")
    assert "\n" not in report.reason and "general WER" in report.reason
    assert not out.exists()  # nothing written beside the packs
    assert digest(current) == before  # the current model is untouched
    assert report.stock == current
    # kept aside where asked, never at --out: a pack of the refused model, named in learn.json
    assert report.refused_pack == kept and WhisperPack.load(kept).learned_terms == GLOSSARY.words
    recorded = json.loads((tmp_path / "packs" / "tiny-learned-fp32.train" / REPORT).read_text(encoding="utf-8"))
    assert recorded["installed"] is False and recorded["pack"] is None and recorded["refused_pack"] == str(kept)
    assert recorded["glossary"] == list(GLOSSARY.words) and recorded["options"]["alpha"] == 1.0
    with pytest.raises(ValueError, match="cannot be --out"):
        learn(current, out, GLOSSARY, options=wreck, keep_refused=out)


def test_the_cli_says_why_in_one_line_and_exits_refused(current, tmp_path, capsys):
    from export.__main__ import main

    words = tmp_path / "words.txt"
    words.write_text("Quillbrook\nZyrtec = zeer tech\n", encoding="utf-8")
    out = tmp_path / "tiny-learned-fp32"
    code = main(["learn", "--base", str(current), "--out", str(out), "--glossary", str(words), "--alpha", "1",
                 "--lr", "1e-2", "--epochs", "1", "--max-general-rise", "0", "--no-progress",
                 "--speech-dir", str(tmp_path / "speech")])
    err = capsys.readouterr()
    assert code == 3 and err.out == "" and not out.exists()
    said = [line for line in err.err.splitlines() if line.startswith("not installed: ")]
    assert len(said) == 1 and said[0].endswith("the current model is kept")
    bad = tmp_path / "bad.txt"
    bad.write_text("Zyrtec =\n", encoding="utf-8")
    assert main(["learn", "--base", str(current), "--out", str(out), "--glossary", str(bad)]) == 1
    assert capsys.readouterr().err.strip().splitlines()[-1].startswith("error: GlossaryError: ")


def test_theta0_and_the_fisher_weights_stay_the_stock_models_across_improvements(current, tmp_path):
    stock, vocab, _ = load_base(current)
    tok = TargetTokenizer(vocab)
    # a first improvement, installed: its pack names the stock model, not itself
    tuned = copy.deepcopy(stock)
    with torch.no_grad():
        for p in tuned.decoder.parameters():
            p.add_(0.01 * torch.randn(p.shape, generator=torch.Generator().manual_seed(1)))
    first = install(tuned, vocab, tmp_path / "first.train", tmp_path / "first-fp32", "fp32", "first", current,
                    ("Quillbrook",))
    assert stock_source(first) == current
    # the pack lists the term it learned (decoding leaves it out of the glossary: engine.glossary.for_pack)
    assert WhisperPack.load(first).learned_terms == learned_terms(first) == ("Quillbrook",)
    WhisperPack.load(first, verify=True)  # parley.json's new key leaves every checksummed file as it was
    assert learned_terms(current) == () and WhisperPack.load(tmp_path / "first-fp32").name == "first"
    # a second improvement starts from the first's weights; its θ₀ is still the stock model
    again, _, _ = load_base(first)
    reference = load_base(stock_source(first))[0]
    start = {n: p.detach().clone() for n, p in again.named_parameters() if n.startswith("decoder.")}
    stock_params = {n: p.detach().clone() for n, p in stock.named_parameters() if n.startswith("decoder.")}
    assert parameter_distance(again, stock_params) > 0.1
    speech = tmp_path / "speech"
    lw.speak_all(lw.general_sentences()[0][:4], speech)
    clips, _ = load_examples(speech, stock.dims.n_mels, tok, "en", 100)
    # alpha 0: only L_reg = sum F (theta - theta_0)^2 — the weights can only move toward theta_0
    fine_tune(again, tok, clips, [], TrainOptions(alpha=0.0, regulariser="fisher", trainable="decoder", lr=1e-3,
                                                  epochs=5, batch_size=4, held_out=0.0, progress=False),
              tmp_path / "work", anchors=clips, reference=reference)
    assert parameter_distance(again, stock_params) < 0.9 * parameter_distance(load_base(first)[0], stock_params)
    assert parameter_distance(again, start) > 0  # it moved, toward the stock model, away from where it started
    second = install(again, vocab, tmp_path / "second.train", tmp_path / "second-fp32", "fp32", "second",
                     stock_source(first), learned_terms(first) + ("Zyrtec", "Quillbrook"))
    assert stock_source(second) == current  # no chain: the third improvement pulls toward the stock model too
    assert learned_terms(second) == ("Quillbrook", "Zyrtec")  # what the first learned is still known, once
