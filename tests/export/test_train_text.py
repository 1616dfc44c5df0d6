"""The text encoder of the shared space, on a tiny random Whisper and a few espeak-ng clips."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import torch

from bench import clips
from export.pack import sha256_file
from export.text_encoder import TEXT_ENCODER_FILE, add_to_pack, alignment_loss, new_text_encoder
from export.train.base import export_trained, load_base
from export.train.data import TargetTokenizer, load_examples
from export.train.evaluate import greedy
from export.train.text import (TextTrainOptions, measure_shared_space, pairs_from_examples, speech_vectors,
                               text_states, train_text_encoder)
from export.whisper_model import new_model

from tests.export.tiny import TINY, save_hf


def transcript(i: int) -> str:
    return " ".join(f"w{(i * 11 + k * 5) % 97 + 1}" for k in range(3 + i % 2))


@pytest.fixture(scope="module")
def setup(tmp_path_factory, clip_dir):
    torch.set_num_threads(2)
    root = tmp_path_factory.mktemp("text")
    base = save_hf(new_model(TINY, seed=5), root / "tiny-hf")
    data = root / "data"
    data.mkdir()
    for i, clip in enumerate(clips.clips("en")[5:10]):
        shutil.copy(clips.synthesize(clip, clip_dir), data / f"s{i}.wav")
        (data / f"s{i}.txt").write_text(transcript(i))
    model, vocab, _ = load_base(base)
    tok = TargetTokenizer(vocab)
    examples, problems = load_examples(data, 80, tok, "en", 100)
    assert not problems
    with torch.no_grad():
        speech = torch.cat([speech_vectors(model.encoder(torch.from_numpy(ex.mel)[None]), [ex]) for ex in examples])
    return root, model, vocab, tok, examples, speech


def test_alignment_loss_prefers_the_matching_pair():
    a = torch.randn(4, 16)
    assert float(alignment_loss(a, a)) < float(alignment_loss(a, a.roll(1, 0)))
    assert float(alignment_loss(a[:1], a[:1])) == pytest.approx(0.0, abs=1e-6)


def test_training_pulls_text_toward_its_own_speech(setup):
    _, model, _, tok, examples, speech = setup
    encoder = new_text_encoder(model, seed=1)
    before = measure_shared_space(model, encoder, tok, examples, speech)
    history = train_text_encoder(model, encoder, tok, pairs_from_examples(examples), speech,
                                 TextTrainOptions(alpha=1.0, epochs=30, batch_size=5, lr=3e-3))
    after = measure_shared_space(model, encoder, tok, examples, speech)
    assert np.mean([h["align"] for h in history[-3:]]) < 0.7 * np.mean([h["align"] for h in history[:3]])
    assert np.mean([h["ce"] for h in history[-3:]]) < 0.6 * np.mean([h["ce"] for h in history[:3]])
    assert after.cosine_same > before.cosine_same and after.cosine_same > after.cosine_other
    assert after.retrieval_accuracy == 1.0  # on the sentences it was trained on
    # the decoder is frozen and random, so it does not spell sentences out yet; but it reads them
    assert sum(bool(set(text.split()) & set(hyp.split())) for text, hyp in after.examples) >= 3, after.examples
    assert all(not p.requires_grad for p in model.parameters())  # the speech side stayed frozen


def test_text_encoder_in_the_pack_runs_in_the_engine_like_torch(setup):
    from engine.whisper import WhisperModel
    from engine.whisper.text_encoder import encode_text, text_via_shared_space

    root, model, vocab, tok, examples, speech = setup
    encoder = new_text_encoder(model, seed=2)
    train_text_encoder(model, encoder, tok, pairs_from_examples(examples), speech,
                       TextTrainOptions(epochs=15, batch_size=5, lr=3e-3))
    pack = export_trained(model, vocab, root / "work", root / "pack", "fp32", "tiny-text")
    add_to_pack(encoder, pack, {"clips": len(examples)})
    meta = json.loads((pack / "parley.json").read_text())
    assert meta["text_encoder"]["dims"]["n_state"] == TINY.n_text_state
    assert meta["files"][TEXT_ENCODER_FILE]["sha256"] == sha256_file(pack / TEXT_ENCODER_FILE)

    session = ort.InferenceSession(str(pack / TEXT_ENCODER_FILE), providers=["CPUExecutionProvider"])
    ids = np.array([list(examples[1].tokens)[:3], list(examples[2].tokens)[:3]], dtype=np.int64)
    (onnx_states,) = session.run(None, {"input_ids": ids})
    np.testing.assert_allclose(onnx_states, encoder(torch.from_numpy(ids)).detach().numpy(), atol=1e-4)

    engine_model = WhisperModel.load(pack, device="cpu", threads=1)  # parley.json checksums still hold
    for ex in examples:
        assert np.allclose(encode_text(engine_model, ex.text)[0], text_states(encoder, ex.tokens)[0].numpy(), atol=1e-4)
        want = greedy(model, None, tok.prompt("en"), tok.eot, 224, text_states(encoder, ex.tokens))
        assert text_via_shared_space(engine_model, ex.text) == tok.decode(want)
