"""The text-translation runtime on packs exported from tiny random models: batching, long inputs,
the length guard, hub-layout packs, the pair registry (pivot, missing pair) and the CLI."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest

from needs import require_module  # noqa: E402

require_module("transformers")  # the packs are built from transformers models in the test

sys.path.append(str(Path(__file__).resolve().parents[1]))  # after the root: tests/engine must not shadow engine
from translate_fixtures import SENTENCES, built  # noqa: E402

from engine.errors import LanguageError, PackError  # noqa: E402
from engine.translate import (MissingPairError, PairRegistry, RouteTranslator, TranslateOptions,  # noqa: E402
                              TranslationPack, Translator)
from engine.cli import translate as translate_cli  # noqa: E402

NO_GUARD = TranslateOptions(length_ratio=None, max_length=30)


@pytest.fixture(scope="module")
def marian(tmp_path_factory) -> Path:
    return built(tmp_path_factory, "marian")[1]


@pytest.fixture(scope="module")
def nllb(tmp_path_factory) -> Path:
    return built(tmp_path_factory, "nllb")[1]


def _hub_copy(pack: Path, dest: Path) -> Path:
    """The pack as a hub Optimum repo holds it: graphs in onnx/, json files at the top, no parley.json."""
    (dest / "onnx").mkdir(parents=True)
    for f in pack.iterdir():
        if f.suffix == ".onnx":
            shutil.copy(f, dest / "onnx" / f.name)
        elif f.name in ("config.json", "generation_config.json", "tokenizer.json", "tokenizer_config.json"):
            shutil.copy(f, dest / f.name)
    return dest


def _relabel(pack: Path, dest: Path, name: str, source: str, target: str) -> Path:
    """A copy of a Marian pack that says it translates source → target (the registry only reads labels)."""
    shutil.copytree(pack, dest)
    meta = json.loads((dest / "parley.json").read_text())
    meta.update(name=name, languages={"source": [source], "target": [target]})
    (dest / "parley.json").write_text(json.dumps(meta))
    return dest


def test_batch_translation_equals_one_by_one(marian):
    translator = Translator.load(marian, device="cpu", threads=1)
    together = translator.translate(SENTENCES, "en", "de", beam_size=2, options=NO_GUARD)
    alone = [translator.translate([s], "en", "de", beam_size=2, options=NO_GUARD)[0] for s in SENTENCES]
    assert together == alone
    assert len(together) == len(SENTENCES) and all(isinstance(t, str) for t in together)
    assert translator.translate(["", "  "], "en", "de") == ["", ""]


def test_unknown_pair_for_a_pack_names_what_it_translates(marian):
    translator = Translator.load(marian, device="cpu", threads=1)
    with pytest.raises(LanguageError, match=r"en → de, not en → fr"):
        translator.translate(["Hello."], "en", "fr")


def test_long_input_is_split_at_sentence_ends(marian):
    translator = Translator.load(marian, device="cpu", threads=1)
    text = " ".join(SENTENCES * 3)
    options = TranslateOptions(length_ratio=None, max_length=20, max_source_tokens=24, beam_size=1)
    segments = translator._segments(text, 24)
    assert len(segments) > 2
    assert all(s.rstrip()[-1] in ".?!" for s in segments)
    assert all(len(translator.tokenizer.encode(s, add_special_tokens=False).ids) <= 24 for s in segments)
    assert " ".join(segments).split() == text.split()  # nothing lost or reordered
    whole = translator.translate([text], "en", "de", options=options)[0]
    assert translator.last_stats.segments == len(segments)
    parts = translator.translate(segments, "en", "de", options=options)
    assert whole == " ".join(p for p in parts if p)


def test_length_guard_caps_the_output(marian):
    translator = Translator.load(marian, device="cpu", threads=1)
    ids = translator.source_ids(SENTENCES[0], "en", "de")
    search = translator.search_options("de", TranslateOptions(length_ratio=0.5), source_len=len(ids))
    assert search.max_length == int(0.5 * len(ids)) + 11
    out = translator.generate_ids([ids], search)[0]
    assert len(out) <= search.max_length - 1


def test_nllb_forces_the_target_language_first(nllb):
    translator = Translator.load(nllb, device="cpu", threads=1)
    for target, code in (("fr", "fra_Latn"), ("de", "deu_Latn")):
        search = translator.search_options(target, NO_GUARD)
        out = translator.generate_ids([translator.source_ids(SENTENCES[0], "en", target)], search)[0]
        assert out[0] == translator.tokenizer.token_to_id(code)
    ids = translator.source_ids(SENTENCES[0], "eng_Latn", "fr")  # NLLB's own codes work too
    assert ids[0] == translator.tokenizer.token_to_id("eng_Latn") and ids[-1] == translator.pack.eos


@pytest.mark.parametrize("family", ["marian", "nllb"])
def test_hub_layout_pack_loads_and_translates_the_same(tmp_path_factory, tmp_path, family):
    pack = built(tmp_path_factory, family)[1]
    hub = _hub_copy(pack, tmp_path / ("opus-mt-en-de" if family == "marian" else "nllb-200-tiny"))
    loaded = TranslationPack.load(hub)
    assert loaded.precision == "unknown" and loaded.files["encoder"].parent.name == "onnx"
    assert ("en", "de") in loaded.pairs
    ours = Translator.load(pack, device="cpu", threads=1).translate(SENTENCES, "en", "de", 2, NO_GUARD)
    theirs = Translator.load(hub, device="cpu", threads=1).translate(SENTENCES, "en", "de", 2, NO_GUARD)
    assert ours == theirs


def test_hub_pack_with_only_a_merged_decoder_translates_the_same(marian, tmp_path):
    from export.merge_decoders import merge_decoders

    hub = _hub_copy(marian, tmp_path / "opus-mt-en-de")
    merge_decoders(hub / "onnx" / "decoder_model.onnx", hub / "onnx" / "decoder_with_past_model.onnx",
                   hub / "onnx" / "decoder_model_merged.onnx")
    separate = sum((hub / "onnx" / f).stat().st_size for f in ("decoder_model.onnx", "decoder_with_past_model.onnx"))
    (hub / "onnx" / "decoder_model.onnx").unlink()
    (hub / "onnx" / "decoder_with_past_model.onnx").unlink()
    assert (hub / "onnx" / "decoder_model_merged.onnx").stat().st_size < 0.8 * separate  # weights stored once
    translator = Translator.load(hub, device="cpu", threads=1)
    assert translator.model.merged
    for beams in (1, 3):
        expected = Translator.load(marian, "cpu", 1).translate(SENTENCES, "en", "de", beams, NO_GUARD)
        assert translator.translate(SENTENCES, "en", "de", beams, NO_GUARD) == expected


def test_pack_with_a_missing_graph_names_the_file(marian, tmp_path):
    broken = shutil.copytree(marian, tmp_path / "broken")
    (broken / "decoder_with_past_model.onnx").unlink()
    with pytest.raises(PackError, match="decoder_with_past_model.onnx: missing"):
        TranslationPack.load(broken)


def test_registry_prefers_a_direct_pack_and_pivots_through_english(marian, nllb, tmp_path):
    root = tmp_path / "packs"
    _relabel(marian, root / "opus-mt-fr-en", "opus-mt-fr-en", "fr", "en")
    _relabel(marian, root / "opus-mt-en-de", "opus-mt-en-de", "en", "de")
    registry = PairRegistry.scan(root)
    assert {("fr", "en"), ("en", "de")} <= set(registry.pairs())
    route = registry.route("fr", "de")
    assert route.pivoted and [s.pack.name for s in route.steps] == ["opus-mt-fr-en", "opus-mt-en-de"]
    assert "via en" in route.note
    result = RouteTranslator(registry, device="cpu", threads=1).translate(SENTENCES[:2], "fr", "de", 1, NO_GUARD)
    first = Translator.load(root / "opus-mt-fr-en", "cpu", 1).translate(SENTENCES[:2], "fr", "en", 1, NO_GUARD)
    assert result.texts == Translator.load(root / "opus-mt-en-de", "cpu", 1).translate(first, "en", "de", 1, NO_GUARD)
    assert result.note == route.note

    shutil.copytree(nllb, root / "tiny-nllb")
    registry = PairRegistry.scan(root)
    assert registry.route("en", "de").steps[0].pack.name == "opus-mt-en-de"  # one-pair model first
    assert not registry.route("fr", "de").pivoted  # NLLB serves it directly now
    assert registry.route("de", "fr").steps[0].pack.name == "tiny-nllb"


def test_missing_pair_names_the_installed_pairs_and_how_to_add_one(marian, tmp_path):
    root = tmp_path / "packs"
    _relabel(marian, root / "opus-mt-en-de", "opus-mt-en-de", "en", "de")
    with pytest.raises(MissingPairError) as info:
        PairRegistry.scan(root).route("ja", "fr")
    message = str(info.value)
    assert "ja → fr" in message and "en→de" in message and str(root) in message
    assert "python -m export translation" in message and "--download" in message
    assert isinstance(info.value, PackError)


def test_cli_translates_lists_and_reports_a_missing_pair(marian, tmp_path, capsys):
    root = tmp_path / "packs"
    _relabel(marian, root / "opus-mt-en-de", "opus-mt-en-de", "en", "de")
    common = ["--device", "cpu", "--threads", "1", "--packs-root", str(root)]
    assert translate_cli.main(["translate", "The cat sat on the mat.", "--from", "en", "--to", "de", *common]) == 0
    out = capsys.readouterr().out.splitlines()
    expected = Translator.load(marian, "cpu", 1).translate(["The cat sat on the mat."], "en", "de")
    assert out == expected
    assert translate_cli.main(["translate", "--list", *common]) == 0
    assert "opus-mt-en-de" in capsys.readouterr().out
    assert translate_cli.main(["translate", "Hallo", "--from", "de", "--to", "ja", *common]) == 1
    err = capsys.readouterr().err
    assert err.startswith("parley: error: no translation pack for de → ja") and "en→de" in err


def test_the_text_job_translates_without_a_front_end(marian, tmp_path):
    """parley translate's job (engine/jobs.py) driven directly: the installed packs (pivoting through English,
    which the result says), one pack folder, a missing pair, and what a plan refuses."""
    from engine.errors import ParleyError
    from engine.jobs import plan_text_job, run_text_job

    root = tmp_path / "packs"
    _relabel(marian, root / "opus-mt-fr-en", "opus-mt-fr-en", "fr", "en")
    _relabel(marian, root / "opus-mt-en-de", "opus-mt-en-de", "en", "de")
    lines = SENTENCES[:2]
    result = run_text_job(lines, plan_text_job("fr", "de", beam_size=1), "cpu", 1, root)
    english = Translator.load(root / "opus-mt-fr-en", "cpu", 1).translate(lines, "fr", "en", 1)
    assert result.texts == Translator.load(root / "opus-mt-en-de", "cpu", 1).translate(english, "en", "de", 1)
    assert result.note is not None and "via en" in result.note
    direct = run_text_job(lines, plan_text_job("en", "de", pack=root / "opus-mt-en-de"), "cpu", 1, tmp_path / "none")
    assert direct.texts == Translator.load(marian, "cpu", 1).translate(lines, "en", "de") and direct.note is None
    with pytest.raises(MissingPairError, match="en→de"):
        run_text_job(lines, plan_text_job("de", "ja"), "cpu", 1, root)
    with pytest.raises(ParleyError, match="--via shared writes English"):
        plan_text_job("en", "de", via="shared")
    with pytest.raises(ParleyError, match="say which languages"):
        plan_text_job("en", None)


def test_io_binding_translates_the_same(marian):
    """The CUDA code path (K/V kept as device values, beam rows selected on the device) run on the CPU."""
    from engine.translate.model import Seq2SeqModel

    plain = Translator.load(marian, "cpu", 1)
    bound = Translator(plain.pack, Seq2SeqModel(plain.pack, "cpu", 1, io_binding=True), plain.tokenizer)
    for beams in (1, 3):
        assert bound.translate(SENTENCES, "en", "de", beams, NO_GUARD) == plain.translate(SENTENCES, "en", "de",
                                                                                         beams, NO_GUARD)
