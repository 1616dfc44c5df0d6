"""bench/learn_words.py's own plumbing, without training: on a fresh cache it writes the glossary where
`python -m export learn` reads it, learns once per alpha (a refused model kept aside to be measured, never at
--out), its results file names no folder of this machine, and a second run reuses what an identical earlier
run learned (issue 15)."""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path


def test_learn_words_learns_each_alpha_then_reuses_it_and_records_no_absolute_paths(tmp_path, monkeypatch):
    monkeypatch.setenv("PARLEY_HOME", str(tmp_path / "home"))  # a cache where bench/learn_words does not exist yet
    from bench import glossary as gb
    from bench import learn_words
    from engine.glossary import format_glossary, parse_glossary
    from export.train.learn import LearnOptions

    calls = []

    def fake_learn(argv, cwd=None):
        """What `python -m export learn` leaves: α 0.75 installed, α 1 refused (its model kept where asked)."""
        args = dict(zip(argv[4::2], argv[5::2]))  # after: python -m export learn
        alpha = float(args["--alpha"])
        calls.append(alpha)
        assert Path(args["--glossary"]).read_text(encoding="utf-8") == gb.GLOSSARY
        assert args["--keep-refused"] != args["--out"]
        installed = alpha < 1
        model = Path(args["--out"] if installed else args["--keep-refused"])
        model.mkdir(parents=True, exist_ok=True)
        train = Path(args["--out"] + ".train")
        train.mkdir(parents=True, exist_ok=True)
        reason = ("installed: term errors on held-out voices 100.0% → 20.0%, general WER 23.8% → 21.3% (-2.5 points)"
                  if installed else
                  "not installed: general WER rose 1.5 points, more than 0.5 (term errors on held-out voices "
                  "95.0% → 10.0%, general WER 9.5% → 11.0% (+1.5 points)); the current model is kept")
        options = {k: list(v) if isinstance(v, tuple) else v
                   for k, v in dataclasses.asdict(LearnOptions(alpha=alpha, progress=False)).items()}
        (train / "learn.json").write_text(json.dumps({
            "installed": installed, "reason": reason, "pack": str(model) if installed else None,
            "refused_pack": None if installed else str(model), "stock": str(tmp_path / "stock" / "model.bin"),
            "base": args["--base"], "glossary_text": format_glossary(parse_glossary(gb.GLOSSARY)).splitlines(),
            "options": options, "n_train": 60, "n_validation": 20, "rows": {"current": {}, "candidate": {}}}),
            encoding="utf-8")

        class Done:
            returncode = 0 if installed else 3

        return Done()

    evaluated = []

    def fake_evaluate(model_dir, corpus, glossary, threads):
        evaluated.append(Path(model_dir).name)
        scores = {"term_occurrences": 40, "terms_written": 38, "term_error_pct": 5.0, "term_sentence_wer_pct": 15.0,
                  "general_wer_pct": 9.0, "human_wer_pct": 0.8}
        return [(name, scores, {"clip": "same words"}, 1.0) for _, name, _ in learn_words.ARMS]

    monkeypatch.setattr(learn_words.subprocess, "run", fake_learn)
    monkeypatch.setattr(learn_words, "evaluate", fake_evaluate)
    monkeypatch.setattr(learn_words.gb, "build_corpus", lambda *a: [])
    monkeypatch.setattr(sys, "argv", ["bench/learn_words.py"])
    out = tmp_path / "results" / "learn_words.json"
    base = str(tmp_path / "stock-pack")
    assert learn_words.main(["--base", base, "--out", out.as_posix()]) == 0
    assert calls == [0.75, 1.0]
    assert evaluated == ["whisper-base-learned-int8", "whisper-base-learned-alpha1-int8-refused"]
    data = json.loads(out.read_text(encoding="utf-8"))
    assert [(r["model"], r["arm"]) for r in data["rows"][3:]] == [
        (model, arm) for model in ("learned, α = 0.75", "learned, α = 1 (refused)")
        for arm in ("none", "both (+2)", "both (+2), learned terms too")]
    refused = data["learn"][1]
    assert refused["installed"] is False and refused["pack"] is None and refused["reused"] is False
    assert refused["refused_pack"] == "<cache>/bench/learn_words/whisper-base-learned-alpha1-int8-refused"
    assert refused["stock"] == "<model.bin>" and refused["glossary_on_equals_none"] is True
    assert str(tmp_path) not in out.read_text(encoding="utf-8")  # no folder of this machine
    md = out.with_suffix(".md").read_text(encoding="utf-8")
    assert "not installed: general WER rose 1.5 points" in md and "measured below, never installed" in md

    # the same glossary, base and options: nothing is learned again; another base: learned again
    assert learn_words.main(["--base", base, "--out", out.as_posix()]) == 0
    assert calls == [0.75, 1.0] and [r["reused"] for r in json.loads(out.read_text())["learn"]] == [True, True]
    assert learn_words.main(["--base", base + "-other", "--alphas", "1", "--out", out.as_posix()]) == 0
    assert calls == [0.75, 1.0, 1.0]
