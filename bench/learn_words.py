"""Learn these words, measured: bench/glossary.py's ten terms learned from the glossary alone, then its test clips.

    nice -n 19 .venv/bin/python bench/learn_words.py        # whisper-base int8; writes docs/results/learn_words.{json,md}

1. ``python -m export learn --base whisper-base-int8 --glossary <the bench's glossary>``: sentences written from
   templates, spoken by espeak-ng's training voices, decoder-only Fisher fine-tune, the gate on the validation
   voices (engine.learn_words). Its verdict and validation numbers are recorded.
2. The learned pack on bench/glossary.py's clips — its own sentences, spoken by en-us and British RP, voices that
   neither training nor validation used — and its general English (espeak-ng and the recorded human clips), through
   Parley's file path (beam 5), with no glossary and with the glossary on (prompt and logit bias +2), beside the stock
   model's rows of docs/results/glossary.json (same clips, same settings).

``--pack DIR``: a pack ``python -m export learn`` already wrote (its ``DIR.train/learn.json`` beside it): step 1 is
skipped. Deterministic: the same commit gives the same numbers, so it runs niced and needs no quiet machine.
"""

from __future__ import annotations

import argparse
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


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--base", default=None, help="the stock pack (default: whisper-base int8, as setup.sh installs it)")
    ap.add_argument("--pack", type=Path, default=None, help="a pack `python -m export learn` already wrote")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--stock", type=Path, default=record.RESULTS / "glossary.json",
                    help="bench/glossary.py's results for the stock model (same clips)")
    ap.add_argument("--out", type=Path, default=record.RESULTS / "learn_words.json")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    glossary = parse_glossary(gb.GLOSSARY, "bench/glossary.py")
    work = record.work_dir("learn_words")
    pack = args.pack
    learn_seconds = None
    if args.base is None:
        from engine.packs.installed import resolve_pack
        args.base = str(resolve_pack("whisper-base", "int8"))
    if pack is None:
        pack = work / "whisper-base-learned-int8"
        work.mkdir(parents=True, exist_ok=True)  # record.work_dir names the folder; on a fresh cache it is not there
        words = work / "words.txt"
        words.write_text(gb.GLOSSARY, encoding="utf-8")
        t0 = time.perf_counter()
        done = subprocess.run([sys.executable, "-m", "export", "learn", "--base", args.base, "--out", str(pack),
                               "--glossary", str(words), "--speech-dir", str(work / "speech"), "--threads",
                               str(args.threads), "--no-progress"], cwd=ROOT)
        learn_seconds = round(time.perf_counter() - t0, 1)
        if done.returncode not in (0, 3):
            print(f"python -m export learn failed (exit {done.returncode})", file=sys.stderr)
            return 1
    learned = json.loads((pack.parent / (pack.name + ".train") / "learn.json").read_text(encoding="utf-8"))
    stock = json.loads(args.stock.read_text(encoding="utf-8"))
    rows = [{"model": "whisper-base (stock)", **r} for r in stock["rows"] if r["arm"] in ("none", "prompt", "both (+2)")]
    if learned["installed"]:
        from engine.jobs import open_model

        corpus = gb.build_corpus(record.work_dir("glossary"), glossary, stock["voices"], None, 8, True)
        model = open_model(str(pack), "int8", "cpu", args.threads)
        gb.share_encodings(model)
        texts_by_arm = {}
        for arm, name in (("none", "none"), ("both", "both (+2)")):  # learned alone; learned with the glossary on
            options = gb.arm_options(arm, glossary, 5, 2.0)
            texts = {c["id"]: " ".join(s.text.strip() for s in model.transcribe(str(c["wav"]), options).segments)
                     for c in corpus}
            texts_by_arm[name] = texts
            rows.append({"model": "learned", "arm": name, **gb.score(corpus, texts, glossary)})
            print(f"learned, {name}: terms {rows[-1]['term_error_pct']}% wrong, general WER "
                  f"{rows[-1]['general_wer_pct']}%, human {rows[-1]['human_wer_pct']}%", file=sys.stderr)
    else:
        texts_by_arm = {}
    gate = (f"Gate (validation: other sentences, voices {', '.join(learned['options']['validation_voices'])}; "
            f"greedy in torch): {learned['reason']}.")
    note = (f"whisper-base int8 learned the {len(glossary.terms)} terms of bench/glossary.py from the glossary alone "
            f"(`python -m export learn`: {learned['n_train']} training sentences in voices "
            f"{', '.join(learned['options']['train_voices'])}; decoder only, alpha {learned['options']['alpha']}, "
            f"Fisher-weighted L_reg toward the stock model, {learned['options']['epochs']} epochs, lr "
            f"{learned['options']['lr']:g}). {gate}\n\nTest: bench/glossary.py's clips (voices {', '.join(stock['voices'])}, "
            f"never used in training or validation), Parley's file path, beam 5, {args.threads} threads; the stock rows "
            f"are docs/results/glossary.json's.\n\n")
    print(table(rows))
    summary = {k: v for k, v in learned.items() if k != "rows"}
    for k in ("pack", "stock"):  # learn.json's absolute paths, as a results file may show them
        if summary.get(k):
            summary[k] = record.shown(summary[k])
    data = {"glossary": gb.GLOSSARY.splitlines(), "learn": summary,
            "learn_seconds": learn_seconds, "validation_rows": learned["rows"], "rows": rows, "texts": texts_by_arm}
    record.write(args.out, "Learn these words: the glossary learned, on voices it never heard", data, note + table(rows))
    print(f"wrote {record.shown(args.out)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "2")
    sys.exit(main())
