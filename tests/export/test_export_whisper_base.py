"""The real Whisper base (CTranslate2 source) converts to a pack that transcribes like torch does.

Needs the reassembled CTranslate2 folder: $PARLEY_CT2_DIR, else the model manager's sources cache.
"""

from __future__ import annotations

import json

import onnx
import pytest
from tokenizers import Tokenizer

from export.importers import load_ct2
from export.merge_decoders import MERGED_FILE
from export.onnx_export import DECODER_FILE, DECODER_WITH_PAST_FILE, ENCODER_FILE
from export.pack import build_pack
from export.parity import OnnxWhisper, mel_frames, parity_of_pack, synth_speech
from export.whisper_model import ModelDims

pytestmark = pytest.mark.model

BASE = ModelDims(n_mels=80, n_audio_ctx=1500, n_audio_state=512, n_audio_head=8, n_audio_layer=6, n_vocab=51865,
                 n_text_ctx=448, n_text_state=512, n_text_head=8, n_text_layer=6)
SENTENCE = "The quick brown fox jumps over the lazy dog."


@pytest.fixture(scope="module")
def fp32_pack(ct2_source, tmp_path_factory):
    return build_pack(ct2_source, tmp_path_factory.mktemp("packs") / "whisper-base-fp32", "fp32", "whisper-base")


def test_ct2_import_has_base_dims_and_alignment_heads(ct2_source):
    model = load_ct2(ct2_source)
    assert model.dims == BASE
    assert model.alignment_heads[0] == (3, 1) and len(model.alignment_heads) == 8


def test_fp32_pack_matches_torch_on_speech(fp32_pack, ct2_source):
    report = parity_of_pack(fp32_pack, ct2_source, text=SENTENCE, frame_lengths=(3000, 1000, 400))
    for p in report.lengths:
        assert p.encoder_max_abs < 5e-3 and p.logits_max_abs < 1e-3 and p.logits_with_past_max_abs < 1e-3, p
        assert p.same_argmax, p
    assert report.tokens_equal
    text = Tokenizer.from_file(str(fp32_pack / "tokenizer.json")).decode(list(report.onnx_tokens))
    assert "lazy dog" in text.lower()


def test_int8_pack_uses_integer_kernels_and_transcribes(pack_int8):
    merged = (pack_int8 / MERGED_FILE).is_file() and not (pack_int8 / DECODER_FILE).is_file()
    graphs = (ENCODER_FILE, MERGED_FILE) if merged else (ENCODER_FILE, DECODER_FILE, DECODER_WITH_PAST_FILE)
    for graph in graphs:
        model = onnx.load(str(pack_int8 / graph), load_external_data=False)
        branches = [a.g for n in model.graph.node for a in n.attribute if a.type == onnx.AttributeProto.GRAPH]
        for g in branches or [model.graph]:  # a merged decoder: both branches
            ops = {n.op_type for n in g.node}
            assert {"MatMulInteger", "DynamicQuantizeLinear"} <= ops, (graph, g.name)
    meta = json.loads((pack_int8 / "parley.json").read_text())
    t = meta["tokens"]
    prompt = [t["sot"], meta["languages"]["en"], t["transcribe"], t["no_timestamps"]]
    runner = OnnxWhisper(pack_int8)
    tokens = runner.greedy(mel_frames(synth_speech(SENTENCE), 80, 3000), prompt, t["eot"], 40)
    text = Tokenizer.from_file(str(pack_int8 / "tokenizer.json")).decode(tokens)
    assert "lazy dog" in text.lower() and "fox" in text.lower()
