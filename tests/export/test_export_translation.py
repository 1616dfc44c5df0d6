"""Translation packs from tiny random Marian, NLLB-200 and M2M100 models: the ONNX graphs equal the
Hugging Face model at several lengths, and our onnxruntime search returns generate's tokens."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import onnx
import pytest
from tokenizers import Tokenizer

from needs import require_module  # noqa: E402

require_module("transformers")

sys.path.append(str(Path(__file__).resolve().parents[1]))  # after the root: tests/engine must not shadow engine
from translate_fixtures import CORPUS, PAIRS, SENTENCES, built, hf_generate  # noqa: E402

from engine.translate.translator import TranslateOptions, Translator  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
FAMILIES = ["marian", "nllb", "m2m100"]
MAX_LENGTH = 40


@pytest.mark.parametrize("family", FAMILIES)
def test_graphs_equal_transformers_at_several_lengths(tmp_path_factory, family):
    from export.translation.pack import load_model
    from export.translation.parity import parity_of_pack

    source, pack = built(tmp_path_factory, family)
    parity = parity_of_pack(pack, load_model(source), lengths=(2, 5, 17, 60))
    assert parity.encoder_max_abs < 1e-4, parity.summary()
    assert parity.logits_max_abs < 1e-4, parity.summary()


@pytest.mark.parametrize("beams", [1, 4])
@pytest.mark.parametrize("family", FAMILIES)
def test_greedy_and_beam_tokens_equal_generate(tmp_path_factory, family, beams):
    source, pack = built(tmp_path_factory, family)
    translator = Translator.load(pack, device="cpu", threads=1)
    src, tgt = PAIRS[family]
    batch = [translator.source_ids(s, src, tgt) for s in SENTENCES]
    search = translator.search_options(tgt, TranslateOptions(beam_size=beams, max_length=MAX_LENGTH,
                                                             length_ratio=None))
    ours = translator.generate_ids(batch, search)
    extra = {"forced_bos_token_id": search.forced_bos} if search.forced_bos is not None else {}
    theirs = hf_generate(source, batch, translator.pack.pad, translator.pack.eos, num_beams=beams,
                         max_length=MAX_LENGTH, early_stopping=False, length_penalty=1.0, **extra)
    assert ours == theirs
    if family != "nllb":  # tied random NLLB mostly runs to the limit; the untied models end sentences
        assert any(o[-1] == translator.pack.eos and len(o) < MAX_LENGTH - 1 for o in ours), ours
        assert len({len(o) for o in ours}) > 1, ours  # rows of the batch finish at different steps
    if search.forced_bos is not None:
        assert all(o[0] == search.forced_bos for o in ours)


def test_pack_describes_itself(tmp_path_factory):
    _, pack = built(tmp_path_factory, "nllb")
    meta = json.loads((pack / "parley.json").read_text())
    assert meta["kind"] == "translation" and meta["architecture"] == "nllb" and meta["precision"] == "fp32"
    assert meta["target_forcing"] == "forced_bos" and meta["tokens"]["decoder_start"] == 2
    assert set(meta["language_tokens"]) == {"eng_Latn", "deu_Latn", "fra_Latn"}
    for name in ("encoder_model.onnx", "decoder_model.onnx", "decoder_with_past_model.onnx", "tokenizer.json",
                 "config.json", "generation_config.json"):
        assert meta["files"][name]["bytes"] == (pack / name).stat().st_size
    encoder = onnx.load(str(pack / "encoder_model.onnx"), load_external_data=False)
    dims = [[d.dim_param or d.dim_value for d in i.type.tensor_type.shape.dim] for i in encoder.graph.input]
    assert [i.name for i in encoder.graph.input] == ["input_ids", "attention_mask"]
    assert all(isinstance(d, str) for shape in dims for d in shape), dims  # batch and sequence stay dynamic


@pytest.mark.parametrize("family", ["marian", "m2m100"])
def test_converted_sentencepiece_tokenizers_round_trip(tmp_path_factory, family):
    source, pack = built(tmp_path_factory, family)
    tok = Tokenizer.from_file(str(pack / "tokenizer.json"))
    vocab = json.loads((source / "vocab.json").read_text())
    for sentence in CORPUS:
        ids = tok.encode(sentence, add_special_tokens=False).ids
        assert vocab["<unk>"] not in ids, sentence
        assert tok.decode(ids) == sentence
    if family == "m2m100":  # language tokens follow the vocabulary, as M2M100Tokenizer numbers them
        assert [tok.token_to_id(f"__{c}__") for c in ("en", "de", "fr")] == [len(vocab), len(vocab) + 1,
                                                                          len(vocab) + 2]


def test_cli_builds_an_int8_merged_pack_that_translates(tmp_path_factory, tmp_path):
    source, fp32 = built(tmp_path_factory, "marian")
    out = tmp_path / "opus-mt-en-de-int8"
    run = subprocess.run([sys.executable, "-m", "export.translation", "--from", str(source), "--out", str(out),
                          "--precision", "int8", "--name", "opus-mt-en-de", "--threads", "1", "--parity", "--merged"],
                         cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.stdout.strip().splitlines()[-1] == str(out)
    assert "parity over source lengths" in run.stderr
    meta = json.loads((out / "parley.json").read_text())
    assert meta["precision"] == "int8"
    merged = onnx.load(str(out / "decoder_model_merged.onnx"))
    assert not (out / "decoder_model.onnx").exists() and [n.op_type for n in merged.graph.node] == ["If"]
    ops = {n.op_type for a in merged.graph.node[0].attribute for n in a.g.node}
    assert ops & {"MatMulInteger", "DynamicQuantizeMatMul"}
    assert "use_cache_branch" in {i.name for i in merged.graph.input}
    texts = Translator.load(out, device="cpu", threads=1).translate(SENTENCES, "en", "de", beam_size=2)
    assert len(texts) == len(SENTENCES) and all(isinstance(t, str) for t in texts)


def test_cli_names_a_missing_model_folder(tmp_path):
    run = subprocess.run([sys.executable, "-m", "export.translation", "--from", str(tmp_path / "nope"),
                          "--out", str(tmp_path / "pack")], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert run.returncode == 1
    last = run.stderr.strip().splitlines()[-1]
    assert last.startswith("error:") and str(tmp_path / "nope") in last


def test_fp16_pack_converted_from_fp32_runs_and_keeps_float32_io(tmp_path_factory, tmp_path):
    from export.translation.pack import convert_pack

    _, fp32 = built(tmp_path_factory, "marian")
    fp16 = convert_pack(fp32, tmp_path / "opus-mt-en-de-fp16", "fp16")
    assert json.loads((fp16 / "parley.json").read_text())["precision"] == "fp16"
    graph = onnx.load(str(fp16 / "decoder_with_past_model.onnx"))
    assert any(t.data_type == onnx.TensorProto.FLOAT16 for t in graph.graph.initializer)
    assert all(i.type.tensor_type.elem_type in (onnx.TensorProto.FLOAT, onnx.TensorProto.INT64)
               for i in graph.graph.input)
    half, full = Translator.load(fp16, "cpu", 1), Translator.load(fp32, "cpu", 1)
    batch = [full.source_ids(s, "en", "de") for s in SENTENCES]
    search = full.search_options("de", TranslateOptions(beam_size=1, max_length=MAX_LENGTH, length_ratio=None))
    same = sum(a == b for a, b in zip(half.generate_ids(batch, search), full.generate_ids(batch, search)))
    assert same >= len(SENTENCES) - 1  # half precision may flip a near tie, not the whole batch
