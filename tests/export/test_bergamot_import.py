"""The Bergamot importer on tiny models written in Marian's own binary format: reading, the architecture
check, the pack's graphs against the torch module, and the one-line errors for bad input."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from bergamot_fixtures import FLOAT32, TINY_YML, tiny_bergamot_folder, tiny_items, write_marian, write_tokenizer
from needs import require_module

torch = require_module("torch")

from export.bergamot.marian_file import MarianFileError, read_marian  # noqa: E402
from export.bergamot.model import Bergamot, UnsupportedModelError  # noqa: E402
from export.bergamot.tokenizer import pack_tokenizer  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]


def test_reader_dequantises_intgemm_and_undoes_the_transpose(tmp_path):
    items = tiny_items()
    model = read_marian(write_marian(tmp_path / "model.bin", items))
    for name in ("Wemb", "encoder_l1_ffn_W1", "decoder_l1_rnn_Wf"):
        original = items[name][1]
        got = model.items[name]
        assert got.value.shape == original.shape
        step = 1.0 / got.quant_mult  # one quantisation step
        assert np.abs(got.value - original).max() <= 0.5 * step + 1e-7, name
    assert np.array_equal(model.items["encoder_l1_self_bq"].value, items["encoder_l1_self_bq"][1])
    assert model.activation_alphas == {"decoder_l1_context_Wq_QuantMultA": 3.5}
    assert "dec-cell: ssru" in model.config_text


def test_truncated_file_names_the_file(tmp_path):
    path = write_marian(tmp_path / "model.enpt.intgemm.alphas.bin", tiny_items())
    path.write_bytes(path.read_bytes()[:-300])
    with pytest.raises(MarianFileError, match=r"model\.enpt\.intgemm\.alphas\.bin.*truncated"):
        read_marian(path)


def test_corrupt_header_and_unknown_element_type(tmp_path):
    bad = tmp_path / "model.bin"
    bad.write_bytes(b"\x07" + b"\0" * 100)
    with pytest.raises(MarianFileError, match=r"model\.bin: binary format version 7"):
        read_marian(bad)
    items = tiny_items()
    items["Wemb"] = (0x1801, items["Wemb"][1])  # Marian's packed8avx2 (FBGEMM): not readable here
    path = write_marian(tmp_path / "packed.bin", {k: v for k, v in items.items()})
    with pytest.raises(MarianFileError, match=r"packed\.bin: item 'Wemb' has element type 0x1801"):
        read_marian(path)


@pytest.mark.parametrize("change", [
    ("dec-cell: ssru", "dec-cell: gru"), ("type: transformer", "type: s2s"),
    ("transformer-decoder-autoreg: rnn", "transformer-decoder-autoreg: self-attention")])
def test_unknown_architecture_is_refused_naming_the_file(tmp_path, change):
    path = write_marian(tmp_path / "model.bin", tiny_items(), TINY_YML.replace(*change))
    key = change[1].split(":")[0]
    with pytest.raises(UnsupportedModelError, match=rf"model\.bin: {key}: .* architecture this importer does not"):
        Bergamot(read_marian(path))


def test_missing_or_misshapen_weight_names_the_item(tmp_path):
    items = tiny_items()
    del items["encoder_l2_ffn_W2"]
    with pytest.raises(MarianFileError, match=r"model\.bin: item 'encoder_l2_ffn_W2' is missing"):
        Bergamot(read_marian(write_marian(tmp_path / "model.bin", items)))
    items = tiny_items()
    items["decoder_l1_rnn_bf"] = (FLOAT32, np.zeros((1, 8), np.float32))
    with pytest.raises(MarianFileError, match=r"'decoder_l1_rnn_bf' has shape \(1, 8\), expected \(1, 16\)"):
        Bergamot(read_marian(write_marian(tmp_path / "other.bin", items)))


def test_vocab_that_does_not_match_the_model_names_the_vocab(tmp_path):
    write_tokenizer(tmp_path / "tokenizer.json")
    with pytest.raises(MarianFileError, match=r"tokenizer\.json: a vocabulary of 40 tokens, but the model has 64"):
        pack_tokenizer(tmp_path, None, 64)


def _torch_greedy(model: Bergamot, ids: list[int], shortlist: np.ndarray, max_len: int) -> list[int]:
    """Marian's greedy search written directly on the torch module (the reference for the runtime)."""
    with torch.no_grad():
        x = torch.tensor([ids])
        mask = torch.ones_like(x)
        _, cross = model.encode(x, mask)
        cells = [torch.zeros(1, model.config.d_model) for _ in model.dec_rnn]
        sl = torch.from_numpy(shortlist)
        out_w, out_b = model.output_rows(sl)
        prev = torch.tensor([[model.config.tgt_vocab]])
        out: list[int] = []
        for step in range(max_len):
            logits, cells = model.decode_step(model.target_rows(prev), torch.tensor([step]), mask, cells, cross,
                                              out_w, out_b)
            token = int(sl[int(logits.argmax(-1))])
            out.append(token)
            if token == 0:
                break
            prev = torch.tensor([[token]])
    return out


@pytest.fixture(scope="module")
def tiny_packs(tmp_path_factory) -> dict[str, Path]:
    from export.bergamot.pack import build_bergamot_pack

    work = tmp_path_factory.mktemp("bergamot")
    folder = tiny_bergamot_folder(work / "enpt-tiny")
    return {"folder": folder, **{p: build_bergamot_pack(folder, work / f"tiny-{p}", p) for p in ("fp32", "int8")}}


def test_fp32_pack_runs_as_the_torch_module_does(tiny_packs):
    from engine.translate import Translator
    from engine.translate.shortlist import Shortlist

    model = Bergamot(read_marian(tiny_packs["folder"] / "model.enpt.intgemm.alphas.bin"))
    translator = Translator.load(tiny_packs["fp32"], "cpu", 1)
    assert translator.pack.architecture == "bergamot" and translator.pack.pairs == [("en", "pt")]
    shortlist = Shortlist.load(tiny_packs["folder"] / "lex.50.50.enpt.s2t.bin", 40, 40)
    texts = ["a b c", "hello there", "kid jab fig"]
    batch = [translator.source_ids(t, "en", "pt") for t in texts]
    search = translator.search_options("pt", source_len=max(map(len, batch)))
    got = translator.generate_ids(batch, search)
    for ids, tokens in zip(batch, got):
        expected = _torch_greedy(model, ids, shortlist.candidates(ids), search.max_length - 1)
        assert tokens == expected
        assert set(tokens) <= set(shortlist.candidates(ids).tolist())  # the shortlist held


def test_int8_pack_keeps_the_files_int8_weights(tiny_packs):
    import onnx
    from onnx import numpy_helper

    marian = read_marian(tiny_packs["folder"] / "model.enpt.intgemm.alphas.bin")
    graph = onnx.load(str(tiny_packs["int8"] / "encoder_model.onnx"))
    ints = [numpy_helper.to_array(t) for t in graph.graph.initializer if t.data_type == onnx.TensorProto.INT8]
    item = marian.items["encoder_l1_ffn_W1"]
    original = np.rint(item.value * item.quant_mult).astype(np.int8)
    assert any(v.shape == original.shape and np.array_equal(v, original) for v in ints)
    from engine.translate import Translator

    assert Translator.load(tiny_packs["int8"], "cpu", 1).translate(["a b"], "en", "pt")[0] is not None


def _export_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "export", "bergamot", *args], capture_output=True, text=True,
                          cwd=ROOT, timeout=600)


def test_cli_bad_model_file_gives_one_line_naming_it_and_writes_nothing(tmp_path):
    folder = tiny_bergamot_folder(tmp_path / "enpt-bad")
    model = folder / "model.enpt.intgemm.alphas.bin"
    model.write_bytes(model.read_bytes()[:5000])
    out = tmp_path / "packs" / "bad"
    proc = _export_cli("--from", str(folder), "--out", str(out))
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines()[-1].startswith(f"error: {model}")
    assert "Traceback" not in proc.stderr
    packs = tmp_path / "packs"
    assert not out.exists() and (not packs.exists() or list(packs.iterdir()) == [])


def test_import_installs_a_checked_pack_and_nothing_on_failure(tmp_path, tiny_packs):
    root = tmp_path / "translation"
    env_cmd = [sys.executable, "-m", "engine.cli.translate", "translate", "--packs-root", str(root)]
    bad = tiny_bergamot_folder(tmp_path / "enpt-vocab")
    write_marian(bad / "model.enpt.intgemm.alphas.bin", tiny_items(vocab=41), TINY_YML.replace("- 40", "- 41"))
    proc = subprocess.run([*env_cmd, "--import", str(bad)], capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert proc.returncode == 1
    last = proc.stderr.strip().splitlines()[-1]
    assert "tokenizer.json" in last and "41" in last, last
    assert not root.exists() or list(root.iterdir()) == []  # nothing half-installed, no hidden staging left
    proc = subprocess.run([*env_cmd, "--import", str(tiny_packs["folder"])], capture_output=True, text=True,
                          cwd=ROOT, timeout=600)
    assert proc.returncode == 0, proc.stderr[-500:]
    assert [p.name for p in root.iterdir()] == ["bergamot-en-pt-fp32"]
    from engine.translate.registry import PairRegistry

    assert PairRegistry.scan(root).pairs() == [("en", "pt")]
