"""Each importer rebuilds exactly the model that was saved, and says which file is wrong when it is not."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from export.importers import ImportError_, load_any, load_ct2, load_hf, load_openai, read_safetensors
from export.vocab import read_source_vocab
from export.whisper_model import ModelDims, log_mel_spectrogram, new_model

from tests.export.tiny import ALIGNMENT_HEADS, LANGS, TINY, save_ct2, save_hf, save_openai, token


@pytest.fixture(scope="module")
def tiny_model():
    return new_model(TINY, seed=3)


def assert_same_weights(a, b, atol=0.0):
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    for k in sa:
        assert sa[k].shape == sb[k].shape, k
        torch.testing.assert_close(sa[k], sb[k], atol=atol, rtol=0, msg=k)


def test_openai_checkpoint_roundtrip(tiny_model, tmp_path):
    loaded = load_openai(save_openai(tiny_model, tmp_path / "tiny.pt"))
    assert loaded.dims == TINY
    assert_same_weights(tiny_model, loaded)
    assert [list(h) for h in loaded.alignment_heads] == ALIGNMENT_HEADS


def test_hf_safetensors_roundtrip(tiny_model, tmp_path):
    folder = save_hf(tiny_model, tmp_path / "hf")
    raw = (folder / "model.safetensors").read_bytes()
    header = json.loads(raw[8 : 8 + int.from_bytes(raw[:8], "little")])
    assert header["model.encoder.layers.0.self_attn.q_proj.weight"]["dtype"] == "F32"
    assert "model.encoder.layers.0.self_attn.k_proj.bias" not in header  # Whisper's key has no bias
    loaded = load_hf(folder)
    assert loaded.dims == TINY
    assert_same_weights(tiny_model, loaded)
    assert [list(h) for h in loaded.alignment_heads] == ALIGNMENT_HEADS
    assert read_safetensors(folder / "model.safetensors")["proj_out.weight"].shape == (TINY.n_vocab, TINY.n_text_state)


def test_ct2_model_bin_roundtrip(tiny_model, tmp_path):
    loaded = load_ct2(save_ct2(tiny_model, tmp_path / "ct2"))
    assert loaded.dims == TINY
    # CTranslate2 stores float16 here: equal to the original within half precision
    assert_same_weights(tiny_model.half().float(), loaded)
    assert [list(h) for h in loaded.alignment_heads] == ALIGNMENT_HEADS
    assert load_any(tmp_path / "ct2")[1] == "ctranslate2"


def test_ct2_missing_tensor_names_the_file(tiny_model, tmp_path):
    folder = save_ct2(tiny_model, tmp_path / "broken", drop="decoder/layer_1/ffn/linear_0/bias")
    with pytest.raises(ImportError_, match=r"broken/model\.bin"):
        load_ct2(folder)


def test_wrong_shape_is_reported(tiny_model, tmp_path):
    state = dict(tiny_model.state_dict())
    state["decoder.blocks.0.mlp.0.weight"] = state["decoder.blocks.0.mlp.0.weight"][:, :-1]
    path = tmp_path / "bad.pt"
    torch.save({"dims": TINY.as_dict(), "model_state_dict": state}, path)
    with pytest.raises(ImportError_, match=r"bad\.pt: decoder\.blocks\.0\.mlp\.0\.weight has shape"):
        load_openai(path)


def test_unknown_source_says_what_it_expected(tmp_path):
    with pytest.raises(ImportError_, match="not a CTranslate2 folder"):
        load_any(tmp_path)


def test_vocab_from_ct2_config(tiny_model, tmp_path):
    vocab = read_source_vocab(save_ct2(tiny_model, tmp_path / "ct2"))
    assert vocab.tokens["sot"] == token("<|startoftranscript|>")
    assert vocab.tokens["no_speech"] == token("<|nospeech|>")
    assert vocab.tokens["timestamp_begin"] == token("<|0.00|>")
    assert vocab.languages == {c: token(f"<|{c}|>") for c in LANGS}
    assert vocab.suppress_tokens == (3, 4)


def test_dims_reject_nonsense():
    with pytest.raises(ValueError, match="n_audio_head"):
        ModelDims(80, 1500, 64, 0, 2, 100, 448, 64, 4, 2)


def test_torch_log_mel_matches_engine_features():
    from engine import features

    rng = np.random.default_rng(0)
    t = np.arange(16000 * 3) / 16000
    audio = (0.3 * np.sin(2 * np.pi * 440 * t) + 0.05 * rng.standard_normal(t.size)).astype(np.float32)
    for n_mels in (80, 128):
        ours = log_mel_spectrogram(torch.from_numpy(audio), n_mels).numpy()
        theirs = np.asarray(features.log_mel_spectrogram(audio, n_mels))
        assert ours.shape == theirs.shape == (n_mels, 300)
        assert np.abs(ours - theirs).max() < 2e-3
        np.testing.assert_allclose(features.mel_filters(n_mels), __import__("export.whisper_model").whisper_model
                                   .mel_filters(n_mels).numpy(), atol=1e-6)
