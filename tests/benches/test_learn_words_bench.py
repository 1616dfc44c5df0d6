"""bench/learn_words.py's own plumbing, without training: on a fresh cache it writes the glossary where
`python -m export learn` reads it, and its results file names no folder of this machine (issue 15)."""

from __future__ import annotations

import json
import sys
from pathlib import Path


def test_learn_words_on_a_fresh_cache_records_a_refused_gate_without_absolute_paths(tmp_path, monkeypatch):
    monkeypatch.setenv("PARLEY_HOME", str(tmp_path / "home"))  # a cache where bench/learn_words does not exist yet
    from bench import learn_words

    seen = {}

    def fake_learn(argv, cwd=None):
        """What `python -m export learn` leaves when its gate refuses the model: learn.json, no pack."""
        args = dict(zip(argv[4::2], argv[5::2]))  # after: python -m export learn
        words = Path(args["--glossary"])
        seen["glossary"] = words.read_text(encoding="utf-8")
        train = Path(args["--out"] + ".train")
        train.mkdir(parents=True)
        reason = ("not installed: general WER rose 1.5 points, more than 0.5 (term errors on held-out voices "
                  "95.0% → 10.0%, general WER 9.5% → 11.0% (+1.5 points)); the current model is kept")
        (train / "learn.json").write_text(json.dumps({
            "installed": False, "reason": reason, "pack": None, "stock": str(tmp_path / "stock" / "model.bin"),
            "options": {"alpha": 0.75, "epochs": 5, "lr": 5e-5, "train_voices": ["en-gb", "en-029+m3"],
                        "validation_voices": ["en-us-nyc"]},
            "n_train": 60, "n_validation": 20, "rows": {"current": {}, "candidate": {}}}), encoding="utf-8")

        class Done:
            returncode = 3

        return Done()

    monkeypatch.setattr(learn_words.subprocess, "run", fake_learn)
    monkeypatch.setattr(sys, "argv", ["bench/learn_words.py"])
    out = tmp_path / "results" / "learn_words.json"
    assert learn_words.main(["--base", str(tmp_path / "stock-pack"), "--out", str(out)]) == 0
    from bench import glossary as gb

    assert seen["glossary"] == gb.GLOSSARY
    data = json.loads(out.read_text(encoding="utf-8"))
    assert data["learn"]["installed"] is False and data["learn"]["stock"] == "<model.bin>"  # not tmp_path's folder
    assert str(tmp_path) not in out.read_text(encoding="utf-8")
    assert [r["model"] for r in data["rows"]] == ["whisper-base (stock)"] * 3  # no learned rows: nothing installed
    md = out.with_suffix(".md").read_text(encoding="utf-8")
    assert "not installed: general WER rose 1.5 points" in md
