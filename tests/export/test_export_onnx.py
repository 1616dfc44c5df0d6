"""A tiny random Whisper goes through the whole pack build, and onnxruntime agrees with torch.

Fast enough for CI: no real model, a few seconds per graph.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from engine.packs.whisper_pack import WhisperPack
from export.importers import load_hf
from export.merge_decoders import MERGED_FILE, USE_CACHE, merge_decoders, merge_pack, weight_bytes
from export.onnx_export import DECODER_FILE, DECODER_WITH_PAST_FILE, ENCODER_FILE
from export.pack import build_pack, sha256_file
from export.parity import OnnxWhisper, check_parity
from export.quantize import convert_fp16, quantize_int8
from export.whisper_model import new_model

from tests.export.tiny import ALIGNMENT_HEADS, LANGS, TINY, save_hf, token

ROOT = Path(__file__).resolve().parents[2]
GRAPHS = (ENCODER_FILE, DECODER_FILE, DECODER_WITH_PAST_FILE)
PROMPT = [token("<|startoftranscript|>"), token("<|en|>"), token("<|transcribe|>"), token("<|notimestamps|>")]


def chirp(seconds: float = 8.0) -> np.ndarray:
    t = np.arange(int(16000 * seconds)) / 16000
    return (0.3 * np.sin(2 * np.pi * (200 + 300 * t) * t)).astype(np.float32)


@pytest.fixture(scope="module")
def source(tmp_path_factory) -> Path:
    return save_hf(new_model(TINY, seed=7), tmp_path_factory.mktemp("src") / "tiny-hf")


@pytest.fixture(scope="module")
def pack(source, tmp_path_factory) -> Path:
    return build_pack(source, tmp_path_factory.mktemp("packs") / "tiny-fp32", "fp32", "tiny", merged_decoder=False)


@pytest.fixture(scope="module")
def merged_pack(pack, tmp_path_factory) -> Path:
    return merge_pack(pack, tmp_path_factory.mktemp("merged") / "tiny-fp32")


def test_pack_describes_itself(pack):
    meta = json.loads((pack / "parley.json").read_text())
    assert meta["precision"] == "fp32" and meta["dynamic_frames"] is True and meta["name"] == "tiny"
    assert meta["dims"] == TINY.as_dict()
    assert meta["tokens"]["eot"] == token("<|endoftext|>")
    assert meta["languages"] == {c: token(f"<|{c}|>") for c in LANGS}
    assert meta["alignment_heads"] == ALIGNMENT_HEADS
    assert meta["source"]["kind"] == "huggingface" and len(meta["source"]["sha256"]) == 64
    for name, info in meta["files"].items():
        assert sha256_file(pack / name) == info["sha256"] and (pack / name).stat().st_size == info["bytes"]
    assert set(GRAPHS) <= set(meta["files"])
    gen = json.loads((pack / "generation_config.json").read_text())
    assert gen["lang_to_id"]["<|de|>"] == token("<|de|>") and gen["alignment_heads"] == ALIGNMENT_HEADS
    cfg = json.loads((pack / "config.json").read_text())
    assert (cfg["d_model"], cfg["decoder_layers"], cfg["num_mel_bins"]) == (64, 3, 80)
    assert json.loads((pack / "preprocessor_config.json").read_text())["feature_size"] == 80


def test_graphs_are_self_contained(pack):
    assert sorted(p.name for p in pack.iterdir() if p.suffix not in (".onnx", ".json")) == []
    for graph in GRAPHS:
        model = onnx.load(str(pack / graph), load_external_data=False)
        assert all(t.data_location != onnx.TensorProto.EXTERNAL for t in model.graph.initializer), graph


def test_graph_names_and_dynamic_axes(pack):
    enc = ort.InferenceSession(str(pack / ENCODER_FILE), providers=["CPUExecutionProvider"])
    (inp,) = enc.get_inputs()
    assert inp.name == "input_features" and inp.shape[1] == 80 and isinstance(inp.shape[2], str)
    dec = ort.InferenceSession(str(pack / DECODER_FILE), providers=["CPUExecutionProvider"])
    assert [i.name for i in dec.get_inputs()] == ["input_ids", "encoder_hidden_states"]
    outs = [o.name for o in dec.get_outputs()]
    assert outs[0] == "logits" and outs[-1] == "cross_attentions"
    assert outs[1:5] == ["present.0.decoder.key", "present.0.decoder.value", "present.0.encoder.key",
                         "present.0.encoder.value"]
    past = ort.InferenceSession(str(pack / DECODER_WITH_PAST_FILE), providers=["CPUExecutionProvider"])
    names = [i.name for i in past.get_inputs()]
    assert names[0] == "input_ids" and len(names) == 1 + 4 * TINY.n_text_layer
    assert "past_key_values.2.encoder.value" in names


def test_onnx_matches_torch_at_several_encoder_lengths(pack, source):
    report = check_parity(load_hf(source), pack, chirp(), PROMPT, token("<|endoftext|>"),
                          frame_lengths=(3000, 1000, 400, 2), max_tokens=12)
    for p in report.lengths:
        assert p.encoder_max_abs < 1e-4 and p.logits_max_abs < 1e-4 and p.logits_with_past_max_abs < 1e-4, p
        assert p.cross_attention_max_abs < 1e-5 and p.same_argmax, p
    assert report.tokens_equal and len(report.torch_tokens) > 0


def test_batch_of_two_encodes_like_two_singles(pack):
    runner = OnnxWhisper(pack)
    mel = np.random.default_rng(1).standard_normal((2, 80, 600)).astype(np.float32)
    both = runner.encode(mel)
    assert both.shape == (2, 300, 64)
    np.testing.assert_allclose(both[1], runner.encode(mel[1:])[0], atol=1e-5)


def test_int8_runs_integer_kernels(pack, tmp_path):
    for graph in GRAPHS:
        quantize_int8(pack / graph, tmp_path / graph)
        model = onnx.load(str(tmp_path / graph))
        ops = {n.op_type for n in model.graph.node}
        assert {"MatMulInteger", "DynamicQuantizeLinear"} <= ops, graph
        float_tables = [t.name for t in model.graph.initializer
                        if t.data_type == onnx.TensorProto.FLOAT and TINY.n_vocab in t.dims and len(t.dims) == 2]
        assert float_tables == [], f"{graph} still holds a float copy of the embedding"
    mel = np.random.default_rng(2).standard_normal((1, 80, 400)).astype(np.float32)
    fp32, int8 = OnnxWhisper(pack), OnnxWhisper(tmp_path)
    ids = np.array([PROMPT], dtype=np.int64)
    a = fp32.first_step(ids, fp32.encode(mel))["logits"]
    b = int8.first_step(ids, int8.encode(mel))["logits"]
    assert np.corrcoef(a.ravel(), b.ravel())[0, 1] > 0.99


def test_fp16_keeps_float32_inputs_and_stays_close(pack, tmp_path):
    for graph in GRAPHS:
        convert_fp16(pack / graph, tmp_path / graph)
    half = OnnxWhisper(tmp_path)
    assert half.encoder.get_inputs()[0].type == "tensor(float)"
    mel = np.random.default_rng(3).standard_normal((1, 80, 400)).astype(np.float32)
    ids = np.array([PROMPT], dtype=np.int64)
    full = OnnxWhisper(pack)
    a = full.first_step(ids, full.encode(mel))["logits"]
    b = half.first_step(ids, half.encode(mel))["logits"]
    assert np.abs(a - b).max() < 0.05 * np.abs(a).max()


def test_cli_builds_an_int8_pack(source, tmp_path):
    out = tmp_path / "tiny-int8"
    proc = subprocess.run([sys.executable, "-m", "export", "whisper", "--from", str(source), "--out", str(out),
                           "--precision", "int8", "--name", "tiny"], cwd=ROOT, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip().splitlines()[-1] == str(out)
    assert "written to" in proc.stderr  # progress is logged to stderr
    meta = json.loads((out / "parley.json").read_text())
    assert meta["precision"] == "int8" and meta["int8"]["per_channel"] is True
    # one merged decoder by default, listed in parley.json in place of the pair
    assert (out / MERGED_FILE).is_file() and not (out / DECODER_FILE).exists()
    assert not (out / DECODER_WITH_PAST_FILE).exists()
    assert set(meta["files"]) >= {ENCODER_FILE, MERGED_FILE} and DECODER_FILE not in meta["files"]
    WhisperPack.load(out, verify=True)


def test_cli_failure_names_the_source(tmp_path):
    missing = tmp_path / "nowhere"
    proc = subprocess.run([sys.executable, "-m", "export", "whisper", "--from", str(missing), "--out",
                           str(tmp_path / "out")], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1
    assert str(missing) in proc.stderr.strip().splitlines()[-1]


# --- merged decoder (weights once) -----------------------------------------------------------------

def _pair_and_merged(pack: Path, precision: str, tmp: Path) -> tuple[ort.InferenceSession, ...]:
    pair = [tmp / DECODER_FILE, tmp / DECODER_WITH_PAST_FILE]
    for graph in pair:
        {"fp32": lambda a, b: b.write_bytes(a.read_bytes()), "int8": quantize_int8,
         "fp16": convert_fp16}[precision](pack / graph.name, graph)
    merge_decoders(*pair, tmp / MERGED_FILE)  # runs onnx.checker
    first, later = onnx.load(str(pair[0])), onnx.load(str(pair[1]))
    merged = onnx.load(str(tmp / MERGED_FILE))
    # every weight stored once: the merged graph holds no more weight bytes than the first-step graph
    assert weight_bytes(merged) <= weight_bytes(first) < weight_bytes(first) + weight_bytes(later)
    assert (tmp / MERGED_FILE).stat().st_size < 0.75 * sum(p.stat().st_size for p in pair)
    assert [n.op_type for n in merged.graph.node] == ["If"]
    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    return tuple(ort.InferenceSession(str(p), opts, providers=["CPUExecutionProvider"])
                 for p in (*pair, tmp / MERGED_FILE))


@pytest.mark.parametrize("precision", ["fp32", "int8", "fp16"])
def test_merged_decoder_equals_the_pair(pack, precision, tmp_path):
    first, later, merged = _pair_and_merged(pack, precision, tmp_path)
    inputs = [i.name for i in merged.get_inputs()]
    assert inputs[:2] == ["input_ids", "encoder_hidden_states"] and inputs[-1] == USE_CACHE
    assert [o.name for o in merged.get_outputs()] == [o.name for o in first.get_outputs()]
    rng = np.random.default_rng(4)
    xa = rng.standard_normal((1, 50, TINY.n_text_state)).astype(np.float32)
    ids = np.array([PROMPT], dtype=np.int64)
    names = [o.name for o in first.get_outputs()]
    want = dict(zip(names, first.run(None, {"input_ids": ids, "encoder_hidden_states": xa})))
    head_dim = TINY.n_text_state // TINY.n_text_head
    empty = np.zeros((1, TINY.n_text_head, 0, head_dim), np.float32)
    past_names = [n for n in inputs if n.startswith("past_key_values.")]
    feeds = {"input_ids": ids, "encoder_hidden_states": xa, **{n: empty for n in past_names},
             USE_CACHE: np.array([False])}
    got = dict(zip(names, merged.run(None, feeds)))
    for name in names:  # logits, every present K/V and the alignment heads' attention
        np.testing.assert_allclose(got[name], want[name], atol=1e-6, err_msg=name)
    # a step with past, batch 2 (beams) and the cross K/V of batch 1 broadcast, as the engine runs it
    cache = {n.replace("present", "past_key_values"): np.repeat(v, 2, axis=0) if ".decoder." in n else v
             for n, v in want.items() if n.startswith("present.")}
    step = np.array([[5], [9]], dtype=np.int64)
    step_names = [o.name for o in later.get_outputs()]
    want = dict(zip(step_names, later.run(None, {"input_ids": step, **cache})))
    feeds = {"input_ids": step, **cache, USE_CACHE: np.array([True]),
             "encoder_hidden_states": np.zeros((2, 1, TINY.n_text_state), np.float32)}
    got = dict(zip(names, merged.run(None, feeds)))
    for name in step_names:
        np.testing.assert_allclose(got[name], want[name], atol=1e-6, err_msg=name)
    assert got["present.0.encoder.key"].size == 0  # the steps keep the first pass's cross K/V


def test_merged_pack_is_described_and_runs(pack, merged_pack, source):
    assert sorted(p.name for p in merged_pack.glob("*.onnx")) == sorted([ENCODER_FILE, MERGED_FILE])
    assert (pack / DECODER_FILE).is_file() and not (pack / MERGED_FILE).exists()  # the source is untouched
    meta = json.loads((merged_pack / "parley.json").read_text())
    assert DECODER_FILE not in meta["files"] and DECODER_WITH_PAST_FILE not in meta["files"]
    for name, info in meta["files"].items():
        assert sha256_file(merged_pack / name) == info["sha256"], name
    loaded = WhisperPack.load(merged_pack, verify=True)
    assert loaded.files["decoder_merged"].is_file() and not loaded.files["decoder"].exists()
    report = check_parity(load_hf(source), merged_pack, chirp(), PROMPT, token("<|endoftext|>"),
                          frame_lengths=(1000,), max_tokens=12)
    (p,) = report.lengths
    assert p.logits_max_abs < 1e-4 and p.logits_with_past_max_abs < 1e-4 and p.cross_attention_max_abs < 1e-5, p
    assert report.tokens_equal and len(report.torch_tokens) > 0


def test_cli_merges_a_pack_in_place(pack, tmp_path):
    copy = tmp_path / "tiny"
    copy.mkdir()
    for f in pack.iterdir():
        (copy / f.name).write_bytes(f.read_bytes())
    proc = subprocess.run([sys.executable, "-m", "export", "merge-decoder", str(copy)], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert sorted(p.name for p in copy.glob("*.onnx")) == sorted([ENCODER_FILE, MERGED_FILE])
    WhisperPack.load(copy, verify=True)
    proc = subprocess.run([sys.executable, "-m", "export", "merge-decoder", str(copy)], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1 and "already has a merged decoder" in proc.stderr.strip().splitlines()[-1]
