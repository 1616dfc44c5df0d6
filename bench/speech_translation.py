"""Speech translation into English: Parley vs faster-whisper (task="translate"), same weights, same clips.

    bench/setup_reference.sh                                   # once: faster-whisper in .refvenv/
    .venv/bin/python bench/speech_translation.py               # int8, beam 1 and 5, 2 threads
    .venv/bin/python bench/speech_translation.py --precisions fp32 int8 --beams 1 --no-fallback \
        --out docs/results/speech_translation_no_fallback.json

The corpus is bench/clips.py's German, French, Spanish, Chinese and Japanese sentences spoken by
espeak-ng, each with an English reference. Both engines get identical 16 kHz arrays, the clip's
language (no detection), task "translate", the same beam size and their (shared) defaults otherwise:
temperature fallback 0 → 1 (``--no-fallback``: temperature 0 only, deterministic), no VAD filter,
compute type matching the pack (int8 ↔ int8, fp32 ↔ float32). Each engine runs in a fresh process
through bench/_worker.py. The table gives corpus BLEU and chrF (sacrebleu, default 13a tokenisation)
per language and overall, Parley − faster-whisper, and on how many clips the two printed the same
text. Scores: docs/results/speech_translation.{json,md} (``--out``); every output: bench/results/ (``--json``).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.file_speed import add_reference_args, reference_model, run_one  # noqa: E402
from bench import clips as clipkit  # noqa: E402
from engine.packs.paths import pack_dir  # noqa: E402
from engine.audio.decode import load_audio  # noqa: E402
from bench import record  # noqa: E402

LANGUAGES = ("de", "fr", "es", "zh", "ja")
ENGINES = ("parley", "faster-whisper")


def build_corpus(work: Path, languages: tuple[str, ...] = LANGUAGES, per_language: int | None = None) -> list[dict]:
    """Every clip (or the first ``per_language``) of ``languages``, spoken by espeak-ng, as 16 kHz float32 arrays."""
    corpus = []
    for lang in languages:
        for clip in clipkit.clips(lang)[:per_language]:
            audio = load_audio(clipkit.synthesize(clip, work))
            npy = work / f"{clip.id}.npy"
            np.save(npy, audio)
            corpus.append({"id": clip.id, "language": lang, "text": clip.text, "ref": clip.reference_en,
                           "npy": str(npy), "duration_s": len(audio) / 16000})
    return corpus


def corpus_scores(refs: list[str], hyps: list[str]) -> tuple[float, float]:
    """(BLEU, chrF) of ``hyps`` against one reference each, sacrebleu's corpus scores."""
    import sacrebleu

    return (sacrebleu.corpus_bleu(hyps, [refs]).score, sacrebleu.corpus_chrf(hyps, [refs]).score)


def compare(corpus: list[dict], outputs: dict[str, dict[str, str]]) -> list[dict]:
    """One row per language (in corpus order) and a last row "all": clips, BLEU and chrF of each
    engine in ``outputs`` ({engine: {clip id: text}}), and how many clips both engines put in
    identical text (after stripping)."""
    languages = list(dict.fromkeys(c["language"] for c in corpus))
    rows = []
    for lang in languages + ["all"]:
        items = [c for c in corpus if lang == "all" or c["language"] == lang]
        refs = [c["ref"] for c in items]
        row = {"language": lang, "clips": len(items)}
        for engine, texts in outputs.items():
            row["bleu", engine], row["chrf", engine] = corpus_scores(refs, [texts[c["id"]] for c in items])
        first, *others = outputs.values()
        row["same"] = sum(all(first[c["id"]].strip() == o[c["id"]].strip() for o in others) for c in items)
        rows.append(row)
    return rows


def format_table(rows: list[dict], engines: tuple[str, ...] = ENGINES) -> str:
    """Markdown: per language BLEU and chrF of both engines, their difference (first − second) and
    identical outputs (one engine: its BLEU and chrF)."""
    if len(engines) == 1:
        (a,) = engines
        return "\n".join(["| language | clips | BLEU | chrF |", "|---|---:|---:|---:|"] +
                         [f"| {r['language']} | {r['clips']} | {r['bleu', a]:.1f} | {r['chrf', a]:.1f} |" for r in rows])
    a, b = engines
    lines = ["| language | clips | BLEU Parley | BLEU FW | Δ BLEU | chrF Parley | chrF FW | Δ chrF | same text |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['language']} | {r['clips']} | {r['bleu', a]:.1f} | {r['bleu', b]:.1f} | "
                     f"{r['bleu', a] - r['bleu', b]:+.1f} | {r['chrf', a]:.1f} | {r['chrf', b]:.1f} | "
                     f"{r['chrf', a] - r['chrf', b]:+.1f} | {r['same']}/{r['clips']} |")
    return "\n".join(lines)


def format_examples(corpus: list[dict], outputs: dict[str, dict[str, str]], per_language: int) -> str:
    lines = []
    for lang in dict.fromkeys(c["language"] for c in corpus):
        for c in [c for c in corpus if c["language"] == lang][:per_language]:
            p, f = outputs["parley"][c["id"]], outputs["faster-whisper"][c["id"]]
            lines.append(f"{c['id']}  {c['text']}")
            lines.append(f"    reference       {c['ref']}")
            if p.strip() == f.strip():
                lines.append(f"    both            {p}")
            else:
                lines.append(f"    parley          {p}")
                lines.append(f"    faster-whisper  {f}")
    return "\n".join(lines)


def _jsonable(rows: list[dict]) -> list[dict]:
    return [{(k if isinstance(k, str) else f"{k[0]}_{k[1]}"): v for k, v in r.items()} for r in rows]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--precisions", nargs="+", default=["int8"], choices=["int8", "fp32"])
    ap.add_argument("--beams", nargs="+", type=int, default=[1, 5])
    ap.add_argument("--languages", nargs="+", default=list(LANGUAGES), choices=LANGUAGES)
    ap.add_argument("--no-fallback", action="store_true",
                    help="temperature 0 only on both sides (no sampling fallback): a deterministic comparison")
    ap.add_argument("--examples", type=int, default=3, help="example outputs printed per language (0: none)")
    ap.add_argument("--json", type=Path, default=None, help="also write scores and every output here")
    ap.add_argument("--out", type=Path, default=record.RESULTS / "speech_translation.json",
                    help="the scores (JSON, and the tables beside it as .md)")
    ap.add_argument("--clips-per-language", type=int, default=None, help="only the first N clips of each (a smoke run)")
    ap.add_argument("--no-reference", action="store_true", help="Parley alone (no faster-whisper: a smoke run)")
    add_reference_args(ap)
    args = ap.parse_args()
    ct2 = None if args.no_reference else reference_model(args)

    import sacrebleu

    temperatures = [0.0] if args.no_fallback else None  # None: both engines' default 0, 0.2 … 1.0
    results = {"sacrebleu": sacrebleu.__version__, "threads": args.threads, "temperatures": temperatures, "runs": {}}
    out_path = ROOT / "bench" / "results" / f"speech_translation-{time.strftime('%Y%m%d-%H%M%S')}.json"
    tables = []
    with tempfile.TemporaryDirectory(prefix="parley-bench-") as tmp:
        work = Path(tmp)
        corpus = build_corpus(work, tuple(args.languages), args.clips_per_language)
        results["refs"] = {c["id"]: c["ref"] for c in corpus}
        total = sum(c["duration_s"] for c in corpus)
        print(f"corpus: {len(corpus)} clips ({', '.join(args.languages)}), {total:.1f} s of audio; "
              f"threads={args.threads}; temperatures {temperatures or 'default (0 … 1.0)'}; "
              f"sacrebleu {sacrebleu.__version__}", flush=True)
        jobs_clips = [{"id": c["id"], "npy": c["npy"], "language": c["language"]} for c in corpus]
        for prec in args.precisions:
            pack = args.packs / f"whisper-base-{prec}" if args.packs else pack_dir("whisper-base", prec)
            for beam in args.beams:
                outputs = {}
                engines = [("parley", Path(sys.executable), pack)] + \
                    ([] if ct2 is None else [("faster-whisper", args.ref_python, ct2)])
                for engine, python, model in engines:
                    job = {"engine": engine, "model": str(model), "precision": prec, "beam_size": beam,
                           "threads": args.threads, "clips": jobs_clips, "language": None, "task": "translate",
                           "temperatures": temperatures}
                    res = run_one(python, job, work)
                    outputs[engine] = {i: c["text"] for i, c in res["clips"].items()}
                    print(f"  {engine:<15} {prec} beam {beam}: {res['transcribe_s']:.1f} s", flush=True)
                rows = compare(corpus, outputs)
                title = f"{prec}, beam {beam}" + (", no fallback" if args.no_fallback else "")
                table = format_table(rows, tuple(outputs))
                tables.append((title, table))
                print(f"\n{title}\n{table}\n", flush=True)
                if args.examples and ct2 is not None:
                    print(format_examples(corpus, outputs, args.examples) + "\n", flush=True)
                results["runs"][f"{prec}_beam{beam}"] = {"scores": _jsonable(rows), "outputs": outputs}
                out_path.parent.mkdir(exist_ok=True)
                out_path.write_text(json.dumps(results, indent=1, ensure_ascii=False))  # a cut-short run keeps what it has

    if len(tables) > 1:
        for title, table in tables:
            print(f"{title}\n{table}\n")
    scores = {key: run["scores"] for key, run in results["runs"].items()}
    record.write(args.out, "Speech translation into English, Parley vs faster-whisper" if ct2 else
                 "Speech translation into English, Parley alone",
                 {"clips": len(corpus), "audio_s": round(total, 1), "threads": args.threads,
                  "temperatures": temperatures, "scores": scores},
                 "\n\n".join(f"{title}\n\n{table}" for title, table in tables), packages=("sacrebleu",))
    if args.json:
        args.json.write_text(json.dumps(results, indent=1, ensure_ascii=False))
    print(f"results: {out_path}")


if __name__ == "__main__":
    main()
