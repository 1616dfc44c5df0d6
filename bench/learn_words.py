"""Learn these words, measured: bench/glossary.py's ten terms learned from the glossary alone, then its test clips.

    nice -n 19 .venv/bin/python bench/learn_words.py        # whisper-base int8; writes docs/results/learn_words.{json,md}

1. For each ``--alphas`` value (default 0.75, the recipe, and 1.0, no regulariser): ``python -m export learn --base
   whisper-base-int8 --glossary <the bench's glossary> --alpha A``: sentences written from templates, spoken by
   espeak-ng's training voices, decoder-only fine-tune (Fisher-weighted L_reg toward the stock model below α = 1),
   the gate on the validation voices (engine.learn_words). Its verdict and validation numbers are recorded; a model
   the gate refuses is kept aside (``--keep-refused``: measured, never installed) so the table shows it too.
2. Each learned model on bench/glossary.py's clips — its own sentences, spoken by en-us and British RP, voices that
   neither training nor validation used — and its general English (espeak-ng and the recorded human clips), through
   Parley's file path (beam 5): with no glossary; with the glossary on (prompt and logit bias +2) as Parley decodes
   now, which leaves out the terms the pack learned (engine.glossary.for_pack: every term here, so it must equal
   "none"); and with the learned terms prompted and biased too (the old way) — beside the stock model's rows of
   docs/results/glossary.json (same clips, same settings).

A learned model is reused when the ``learn.json`` beside it records this glossary, this base and the same
options (deterministic: the same commit gives the same numbers); ``--fresh`` learns anew, as after a change to
the learning code. It runs niced and needs no quiet machine.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench import glossary as gb  # noqa: E402
from bench import record  # noqa: E402
from engine.glossary import parse_glossary  # noqa: E402


def table(rows: list[dict]) -> str:
    def pct(v):
        return "–" if v is None else f"{v:.1f}%"

    lines = ["| model | arm | term errors | WER, term sentences | WER, general sentences | WER, human clips |",
             "|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['model']} | {r['arm']} | {pct(r['term_error_pct'])} ({r['term_occurrences'] - r['terms_written']}"
                     f"/{r['term_occurrences']}) | {pct(r['term_sentence_wer_pct'])} | {pct(r['general_wer_pct'])} | "
                     f"{pct(r['human_wer_pct'])} |")
    return "\n".join(lines)


RECIPE_ALPHA = 0.75  # export learn's default (LearnOptions.alpha): its pack keeps the folder name it always had
ARMS = (("none", "none", False), ("both", "both (+2)", False), ("both", "both (+2), learned terms too", True))


def pack_folder(work: Path, alpha: float) -> Path:
    name = "whisper-base-learned-int8" if alpha == RECIPE_ALPHA else f"whisper-base-learned-alpha{alpha:g}-int8"
    return work / name


def learned_model(learned: dict) -> Path | None:
    """The learned model's pack: installed, or kept aside after the gate refused it; None when neither is there."""
    found = learned.get("pack") or learned.get("refused_pack")
    return Path(found) if found and Path(found).is_dir() else None


def reusable(pack: Path, alpha: float, base: str, glossary) -> dict | None:
    """The learn.json of an earlier run of this very learning (same glossary, base and options) whose model is
    still there; None otherwise."""
    from engine.glossary import format_glossary
    from export.train.learn import REPORT, LearnOptions

    report = pack.parent / (pack.name + ".train") / REPORT
    if not report.is_file():
        return None
    learned = json.loads(report.read_text(encoding="utf-8"))
    options = {k: list(v) if isinstance(v, tuple) else v
               for k, v in dataclasses.asdict(LearnOptions(alpha=alpha, progress=False)).items()}
    same = (learned.get("glossary_text") == format_glossary(glossary).splitlines() and learned.get("base") == base
            and learned.get("options") == options)
    return learned if same and learned_model(learned) is not None else None


def evaluate(model_dir: Path, corpus: list[dict], glossary, threads: int) -> list[tuple[str, dict, dict, float]]:
    """[(arm, scores, texts, seconds)] of the pack at ``model_dir`` on the test clips, for each of ARMS."""
    from engine.jobs import open_model

    model = open_model(str(model_dir), "int8", "cpu", threads)
    gb.share_encodings(model)
    out = []
    for arm, name, keep_learned in ARMS:
        options = dataclasses.replace(gb.arm_options(arm, glossary, 5, 2.0), glossary_keep_learned=keep_learned)
        t0 = time.perf_counter()
        texts = {c["id"]: " ".join(s.text.strip() for s in model.transcribe(str(c["wav"]), options).segments)
                 for c in corpus}
        out.append((name, gb.score(corpus, texts, glossary), texts, round(time.perf_counter() - t0, 1)))
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--base", default=None, help="the stock pack (default: whisper-base int8, as setup.sh installs it)")
    ap.add_argument("--alphas", type=float, nargs="+", default=[RECIPE_ALPHA, 1.0],
                    help="weights of L_recon to learn with (default 0.75, the recipe, and 1.0: no regulariser)")
    ap.add_argument("--fresh", action="store_true", help="learn anew even where an identical earlier run is there")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--stock", type=Path, default=record.RESULTS / "glossary.json",
                    help="bench/glossary.py's results for the stock model (same clips)")
    ap.add_argument("--out", type=Path, default=record.RESULTS / "learn_words.json")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    glossary = parse_glossary(gb.GLOSSARY, "bench/glossary.py")
    work = record.work_dir("learn_words")
    if args.base is None:
        from engine.packs.installed import resolve_pack
        args.base = str(resolve_pack("whisper-base", "int8"))
    work.mkdir(parents=True, exist_ok=True)  # record.work_dir names the folder; on a fresh cache it is not there
    words = work / "words.txt"
    words.write_text(gb.GLOSSARY, encoding="utf-8")
    runs = []
    for alpha in args.alphas:
        pack = pack_folder(work, alpha)
        learned = None if args.fresh else reusable(pack, alpha, str(args.base), glossary)
        learn_seconds = None
        if learned is not None:
            print(f"alpha {alpha:g}: reusing {record.shown(learned_model(learned))} (its learn.json records this "
                  "glossary, base and options)", file=sys.stderr)
        else:
            t0 = time.perf_counter()
            done = subprocess.run([sys.executable, "-m", "export", "learn", "--base", args.base, "--out", str(pack),
                                   "--glossary", str(words), "--alpha", f"{alpha:g}", "--keep-refused",
                                   str(pack.parent / (pack.name + "-refused")), "--speech-dir", str(work / "speech"),
                                   "--threads", str(args.threads), "--no-progress"], cwd=ROOT)
            learn_seconds = round(time.perf_counter() - t0, 1)
            if done.returncode not in (0, 3):
                print(f"python -m export learn --alpha {alpha:g} failed (exit {done.returncode})", file=sys.stderr)
                return 1
            learned = json.loads((pack.parent / (pack.name + ".train") / "learn.json").read_text(encoding="utf-8"))
        runs.append((alpha, learned, learn_seconds))
    stock = json.loads(args.stock.read_text(encoding="utf-8"))
    rows = [{"model": "whisper-base (stock)", **r} for r in stock["rows"]
            if r["arm"] in ("none", "prompt", "both (+2)")]
    corpus = None
    texts_by_model, summaries, notes = {}, [], []
    for alpha, learned, learn_seconds in runs:
        label = f"learned, α = {alpha:g}" + ("" if learned["installed"] else " (refused)")
        model_dir = learned_model(learned)
        if model_dir is not None:
            if corpus is None:
                corpus = gb.build_corpus(record.work_dir("glossary"), glossary, stock["voices"], None, 8, True)
            texts_by_model[label] = {}
            for name, scores, texts, seconds in evaluate(model_dir, corpus, glossary, args.threads):
                texts_by_model[label][name] = texts
                rows.append({"model": label, "alpha": alpha, "installed": learned["installed"], "arm": name,
                             **scores, "seconds": seconds})
                print(f"{label}, {name}: terms {scores['term_error_pct']}% wrong, general WER "
                      f"{scores['general_wer_pct']}%, human {scores['human_wer_pct']}% ({seconds} s)",
                      file=sys.stderr)
        summary = {k: v for k, v in learned.items() if k != "rows"}
        for k in ("pack", "stock", "refused_pack", "base"):  # learn.json's absolute paths, as results show them
            if summary.get(k):
                summary[k] = record.shown(summary[k])
        arms = texts_by_model.get(label, {})
        summaries.append({"alpha": alpha, "model": label, **summary, "learn_seconds": learn_seconds,
                          "reused": learn_seconds is None,
                          "glossary_on_equals_none": arms.get("both (+2)") == arms["none"] if arms else None,
                          "validation_rows": learned["rows"]})
        o = learned["options"]
        pull = "Fisher-weighted L_reg toward the stock model" if alpha < 1 else "no regulariser"
        kept = ("" if learned["installed"] or model_dir is None
                else " — the refused model is measured below, never installed")
        notes.append(f"α = {alpha:g} ({pull}; {learned['n_train']} training sentences, {o['epochs']} epochs, "
                     f"lr {o['lr']:g}): {learned['reason']}{kept}.")
    first = runs[0][1]["options"]
    note = (f"whisper-base int8 learned the {len(glossary.terms)} terms of bench/glossary.py from the glossary alone "
            f"(`python -m export learn`: training voices {', '.join(first['train_voices'])}; decoder only). "
            f"Gate (validation: other sentences, voices {', '.join(first['validation_voices'])}; greedy in torch):\n\n"
            + "\n".join(f"- {n}" for n in notes) +
            f"\n\nTest: bench/glossary.py's clips (voices {', '.join(stock['voices'])}, never used in training or "
            f"validation), Parley's file path, beam 5, {args.threads} threads; the stock rows are "
            "docs/results/glossary.json's. \"both (+2)\" is the glossary on as Parley now decodes with a learned "
            "pack: the terms it learned (here all of the glossary's) are neither prompted nor biased "
            "(engine.glossary.for_pack); \"both (+2), learned terms too\" prompts and biases them anyway, as "
            "before.\n\n")
    print(table(rows))
    data = {"glossary": gb.GLOSSARY.splitlines(), "learn": summaries, "rows": rows, "texts": texts_by_model}
    record.write(args.out, "Learn these words: the glossary learned, on voices it never heard", data,
                 note + table(rows))
    print(f"wrote {record.shown(args.out)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "2")
    sys.exit(main())
