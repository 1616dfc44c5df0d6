"""Pack loading and validation on fake pack folders (no model needed)."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest

from engine import runtime
from engine.errors import PackError
from engine.packs.whisper_pack import WhisperPack

DIMS = {"n_mels": 80, "n_audio_ctx": 1500, "n_audio_state": 512, "n_audio_head": 8, "n_audio_layer": 6,
        "n_vocab": 51865, "n_text_ctx": 448, "n_text_state": 512, "n_text_head": 8, "n_text_layer": 6}
TOKENS = {"eot": 50257, "sot": 50258, "translate": 50358, "transcribe": 50359, "sot_lm": 50360, "sot_prev": 50361,
          "no_speech": 50362, "no_timestamps": 50363, "timestamp_begin": 50364}
FILES = ("encoder_model.onnx", "decoder_model.onnx", "decoder_with_past_model.onnx", "tokenizer.json")


def _write(path: Path, data: bytes) -> dict:
    path.write_bytes(data)
    return {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}


@pytest.fixture
def fake_pack(tmp_path) -> Path:
    pack = tmp_path / "whisper-base-int8"
    pack.mkdir()
    files = {name: _write(pack / name, f"fake {name}".encode() * 10) for name in FILES}
    meta = {"format": 1, "kind": "whisper", "name": "whisper-base", "precision": "int8", "dynamic_frames": True,
            "dims": DIMS, "tokens": TOKENS, "languages": {"en": 50259, "de": 50261},
            "suppress_tokens": [1, 2], "begin_suppress_tokens": [220, 50257], "alignment_heads": [[3, 1], [4, 2]],
            "files": files}
    (pack / "parley.json").write_text(json.dumps(meta))
    return pack


def test_a_complete_pack_describes_itself(fake_pack):
    pack = WhisperPack.load(fake_pack, verify=True)
    assert pack.precision == "int8" and pack.dynamic_frames
    assert pack.dims.n_text_layer == 6 and pack.tokens.timestamp_begin == 50364
    assert pack.languages == {"en": 50259, "de": 50261} and pack.alignment_heads == ((3, 1), (4, 2))
    assert pack.files["encoder"] == fake_pack / "encoder_model.onnx"
    assert (fake_pack / ".verified").exists()


@pytest.mark.parametrize("name", ["encoder_model.onnx", "decoder_with_past_model.onnx", "tokenizer.json"])
def test_missing_file_is_named_with_the_rebuild_command(fake_pack, name):
    (fake_pack / name).unlink()
    with pytest.raises(PackError) as e:
        WhisperPack.load(fake_pack)
    assert name in str(e.value) and "parley models build whisper-base" in str(e.value)


def test_truncated_file_is_caught_by_its_size(fake_pack):
    path = fake_pack / "decoder_model.onnx"
    path.write_bytes(path.read_bytes()[:-5])
    with pytest.raises(PackError, match="decoder_model.onnx.*corrupt or incomplete"):
        WhisperPack.load(fake_pack)


def test_same_size_corruption_is_caught_by_sha256_once_and_then_remembered(fake_pack):
    WhisperPack.load(fake_pack, verify=True)  # hashes and stamps every file
    path = fake_pack / "encoder_model.onnx"
    data = bytearray(path.read_bytes())
    data[3] ^= 0xFF
    path.write_bytes(bytes(data))  # new mtime: the stamp no longer covers it
    pack = WhisperPack.load(fake_pack)  # sizes only: passes
    with pytest.raises(PackError, match="encoder_model.onnx.*sha256.*parley models build"):
        pack.verify(full=True)


def test_verified_stamp_skips_rehashing_unchanged_files(fake_pack, monkeypatch):
    WhisperPack.load(fake_pack, verify=True)
    import engine.packs.files as pack_module

    def boom(_):
        raise AssertionError("hashed again")

    monkeypatch.setattr(pack_module, "sha256_file", boom)
    WhisperPack.load(fake_pack, verify=True)


def test_corrupt_onnx_is_a_pack_error_naming_the_file(fake_pack):
    runtime.clear_cache()
    with pytest.raises(PackError) as e:
        runtime.create_session(fake_pack / "encoder_model.onnx", device="cpu", threads=1)
    assert "encoder_model.onnx" in str(e.value) and "rebuild" in str(e.value)


def test_missing_folder(tmp_path):
    with pytest.raises(PackError, match="nowhere"):
        WhisperPack.load(tmp_path / "nowhere")


def test_hub_pack_is_described_from_its_json_files(tmp_path):
    pack = tmp_path / "hub"
    pack.mkdir()
    for name in ("encoder_model.onnx", "decoder_model_merged.onnx"):
        (pack / name).write_bytes(b"x")
    config = {"num_mel_bins": 80, "max_source_positions": 1500, "d_model": 384, "encoder_attention_heads": 6,
              "encoder_layers": 4, "vocab_size": 51865, "max_target_positions": 448, "decoder_attention_heads": 6,
              "decoder_layers": 4}
    gen = {"lang_to_id": {"<|en|>": 50259, "<|fr|>": 50265}, "task_to_id": {"transcribe": 50359, "translate": 50358},
           "decoder_start_token_id": 50258, "no_timestamps_token_id": 50363, "prev_sot_token_id": 50361,
           "suppress_tokens": [1, 2, 7], "begin_suppress_tokens": [220, 50257], "alignment_heads": [[2, 2]],
           "is_multilingual": True}
    added = [{"id": i, "content": c} for i, c in [(50257, "<|endoftext|>"), (50258, "<|startoftranscript|>"),
                                                  (50360, "<|startoflm|>"), (50361, "<|startofprev|>"),
                                                  (50362, "<|nocaptions|>"), (50363, "<|notimestamps|>")]]
    (pack / "config.json").write_text(json.dumps(config))
    (pack / "generation_config.json").write_text(json.dumps(gen))
    (pack / "tokenizer.json").write_text(json.dumps({"added_tokens": added, "model": {"vocab": {}}}))
    p = WhisperPack.load(pack)
    assert not p.dynamic_frames and p.dims.n_text_state == 384 and p.dims.n_text_layer == 4
    assert p.languages == {"en": 50259, "fr": 50265}
    assert p.tokens.no_speech == 50362 and p.tokens.timestamp_begin == 50364 and p.tokens.eot == 50257
    assert p.suppress_tokens == (1, 2, 7) and p.alignment_heads == ((2, 2),)
    os.remove(pack / "decoder_model_merged.onnx")
    with pytest.raises(PackError, match="decoder_model.onnx"):
        WhisperPack.load(pack)
