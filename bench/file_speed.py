"""File transcription: Parley vs faster-whisper, same weights, same clips, same threads, one run.

    bench/setup_reference.sh                      # once: faster-whisper and its model folder in .refvenv/
    .venv/bin/python bench/file_speed.py          # int8 + fp32, beam 1 + 5, 2 threads
    .venv/bin/python bench/file_speed.py --precisions int8 --beams 1 5
    PARLEY_REF_PYTHON=<python of another env> .venv/bin/python bench/file_speed.py \
        --packs <packs folder> --ct2 <CTranslate2 folder>   # a reference env, packs and CT2 model elsewhere

Each configuration runs in a fresh process (so peak RSS is its own), on identical 16 kHz float32
arrays (so audio decoding is not part of the comparison), and prints wall time, real-time factor,
peak RSS and WER with the ratio Parley / faster-whisper, and the CPU time of all the process's threads (which
other jobs on the machine inflate less than the wall time). The summary goes to docs/results/file_speed.{json,md}
(``--out``), every clip's text to bench/results/.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench import clips as clipkit  # noqa: E402
from engine.packs.paths import pack_dir  # noqa: E402
from engine.audio.decode import load_audio  # noqa: E402
from bench import record  # noqa: E402
from bench.reference_model import DEFAULT_OUT as REFERENCE_MODEL  # noqa: E402


def build_corpus(work: Path, with_human: bool, max_clips: int | None = None) -> list[dict]:
    """espeak-ng English sentences joined into one long file + each sentence alone + human speech
    (``max_clips``: the first English sentences only, for a smoke run)."""
    corpus = []
    english = clipkit.clips("en")[:max_clips]
    long = clipkit.concat_clips(english, work / "english_long.wav", work, pause_s=0.8)
    corpus.append({"id": "espeak_en_long", "wav": long.path, "ref": long.text})
    for clip in english:
        corpus.append({"id": clip.id, "wav": clipkit.synthesize(clip, work), "ref": clip.text})
    if with_human:
        for path in clipkit.human_clips(work):
            # endgame_nagg_nell has no verified reference: timed, not scored
            corpus.append({"id": f"human_{path.stem}", "wav": path, "ref": clipkit.HUMAN_TRANSCRIPTS.get(path.stem, "")})
    for item in corpus:
        audio = load_audio(item["wav"])
        item["npy"] = str(work / f"{item['id']}.npy")
        item["duration_s"] = len(audio) / 16000
        np.save(item["npy"], audio)
    return corpus


def run_one(python: Path, job: dict, work: Path) -> dict:
    job_path = work / f"job_{job['engine']}_{job['precision']}_{job['beam_size']}.json"
    out_path = job_path.with_suffix(".out.json")
    job_path.write_text(json.dumps(job))
    t0 = time.perf_counter()
    proc = subprocess.run([str(python), str(ROOT / "bench" / "_worker.py"), str(job_path), str(out_path)],
                          cwd=ROOT, capture_output=True, text=True, env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin",
                                                                      "OMP_NUM_THREADS": str(job["threads"])})
    if proc.returncode != 0:
        raise SystemExit(f"{job['engine']} failed:\n{proc.stderr[-3000:]}")
    result = json.loads(out_path.read_text())
    result["process_s"] = time.perf_counter() - t0
    return result


def corpus_wer(corpus: list[dict], result: dict, ids: set[str]) -> float:
    scored = [c for c in corpus if c["id"] in ids and c["ref"]]
    words = [len(clipkit.normalize_text(c["ref"]).split()) for c in scored]
    errors = [clipkit.wer(c["ref"], result["clips"][c["id"]]["text"]) * n for c, n in zip(scored, words)]
    return 100.0 * sum(errors) / max(sum(words), 1)


def _save(path: Path, total_audio: float, threads: int, raw: dict, corpus: list[dict]) -> None:
    path.parent.mkdir(exist_ok=True)
    path.write_text(json.dumps({"total_audio_s": total_audio, "threads": threads, "runs": raw,
                               "refs": {c["id"]: c["ref"] for c in corpus}}, indent=1))


def add_reference_args(ap: argparse.ArgumentParser) -> None:
    """--ref-python, --packs, --ct2: where Parley's packs and the faster-whisper reference live."""
    ap.add_argument("--ref-python", type=Path,
                    default=Path(os.environ.get("PARLEY_REF_PYTHON", ROOT / ".refvenv" / "bin" / "python")),
                    help="python of the faster-whisper environment (default: $PARLEY_REF_PYTHON, else .refvenv/)")
    ap.add_argument("--packs", type=Path, default=None,
                    help="folder holding whisper-base-<precision> packs (default: Parley's pack cache)")
    ap.add_argument("--ct2", type=Path, default=None,
                    help="CTranslate2 whisper-base folder (default: .refvenv/whisper-base-ct2, which "
                         "bench/setup_reference.sh makes from Parley's source cache)")


def reference_model(args) -> Path:
    """The CTranslate2 folder faster-whisper runs, once both it and the reference python are there."""
    ct2 = args.ct2 or REFERENCE_MODEL
    if not (ct2 / "model.bin").exists() or not (ct2 / "vocabulary.json").exists() and \
            not (ct2 / "vocabulary.txt").exists():
        raise SystemExit(f"{ct2} lacks model.bin or its vocabulary: run bench/setup_reference.sh first")
    if not args.ref_python.exists():
        raise SystemExit(f"{args.ref_python} missing: run bench/setup_reference.sh first")
    return ct2


def summary(rows: list[tuple], total_audio: float, clips: int) -> list[dict]:
    """One row per configuration: both engines' wall time, WER, peak RSS and load time, the ratios, same text."""
    out = []
    for prec, beam, p, f, same in rows:
        row = {"precision": prec, "beam_size": beam, "clips": clips, "same_text": same}
        for name, r in (("parley", p), ("faster_whisper", f)):
            if r is not None:
                row[name] = {"wall_s": round(r["transcribe_s"], 2), "rtf": round(r["transcribe_s"] / total_audio, 4),
                             "cpu_s": round(r["transcribe_cpu_s"], 2) if "transcribe_cpu_s" in r else None,
                             "wer_pct": round(r["wer"], 2), "peak_rss_mb": round(r["peak_rss_mb"]),
                             "load_s": round(r["load_s"], 2)}
        if f is not None:
            row["speed_ratio"] = round(p["transcribe_s"] / f["transcribe_s"], 2)
            row["rss_ratio"] = round(p["peak_rss_mb"] / f["peak_rss_mb"], 2)
            if "transcribe_cpu_s" in p and "transcribe_cpu_s" in f:
                row["cpu_ratio"] = round(p["transcribe_cpu_s"] / f["transcribe_cpu_s"], 2)
        out.append(row)
    return out


def markdown(rows: list[dict]) -> str:
    """The README's table."""
    lines = ["| config | Parley wall / WER | faster-whisper wall / WER | speed ratio | peak RSS Parley / FW (ratio) "
             "| same text |", "|---|---|---|---|---|---|"]
    for r in rows:
        p, f = r["parley"], r.get("faster_whisper")
        fw = f"{f['wall_s']:.1f} s / {f['wer_pct']:.2f} %" if f else "–"
        ratio = f"{r['speed_ratio']:.2f}" if f else "–"
        rss = f"{p['peak_rss_mb']} / {f['peak_rss_mb']} MB ({r['rss_ratio']:.2f})" if f else f"{p['peak_rss_mb']} MB"
        same = f"{r['same_text']}/{r['clips']}" if f else "–"
        lines.append(f"| {r['precision']}, beam {r['beam_size']} | {p['wall_s']:.1f} s / {p['wer_pct']:.2f} % | {fw} "
                     f"| {ratio} | {rss} | {same} |")
    cpu = [r for r in rows if "cpu_ratio" in r]
    if cpu:  # CPU time moves less than wall time when other jobs load the machine
        lines += ["", "CPU time of all threads, Parley / faster-whisper: " + "; ".join(
            f"{r['precision']} beam {r['beam_size']} {r['parley']['cpu_s']:.1f} / {r['faster_whisper']['cpu_s']:.1f} s "
            f"({r['cpu_ratio']:.2f})" for r in cpu) + "."]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--precisions", nargs="+", default=["int8", "fp32"])
    ap.add_argument("--beams", nargs="+", type=int, default=[1, 5])
    ap.add_argument("--no-human", action="store_true", help="skip the recorded human speech clips")
    ap.add_argument("--max-clips", type=int, default=None, help="only the first N English sentences (a smoke run)")
    ap.add_argument("--no-reference", action="store_true", help="Parley alone (no faster-whisper: a smoke run)")
    ap.add_argument("--out", type=Path, default=record.RESULTS / "file_speed.json",
                    help="the summary (JSON, and the table beside it as .md)")
    add_reference_args(ap)
    args = ap.parse_args()
    ct2 = None if args.no_reference else reference_model(args)

    with tempfile.TemporaryDirectory(prefix="parley-bench-") as tmp:
        work = Path(tmp)
        corpus = build_corpus(work, not args.no_human, args.max_clips)
        total_audio = sum(c["duration_s"] for c in corpus)
        jobs_clips = [{"id": c["id"], "npy": c["npy"]} for c in corpus]
        ids = {c["id"] for c in corpus}
        print(f"corpus: {len(corpus)} clips, {total_audio:.1f} s of audio; threads={args.threads}", flush=True)
        rows, raw = [], {}
        raw_dir = ROOT / "bench" / "results" if args.out.parent.resolve() == record.RESULTS else args.out.parent
        raw_path = raw_dir / f"file_speed-{time.strftime('%Y%m%d-%H%M%S')}.json"
        engines = [("parley", Path(sys.executable))] + ([] if ct2 is None else [("faster-whisper", args.ref_python)])
        for prec in args.precisions:
            pack = args.packs / f"whisper-base-{prec}" if args.packs else pack_dir("whisper-base", prec)
            for beam in args.beams:
                pair = {}
                for engine, python in engines:
                    model = pack if engine == "parley" else ct2
                    job = {"engine": engine, "model": str(model), "precision": prec, "beam_size": beam,
                           "threads": args.threads, "clips": jobs_clips, "language": None, "task": "transcribe"}
                    res = run_one(python, job, work)
                    res["wer"] = corpus_wer(corpus, res, ids)
                    pair[engine] = res
                    print(f"  {engine:<15} {prec} beam {beam}: {res['transcribe_s']:.1f} s, "
                          f"WER {res['wer']:.1f}%, RSS {res['peak_rss_mb']:.0f} MB", flush=True)
                p, f = pair["parley"], pair.get("faster-whisper")
                same = None
                if f is not None:
                    differ = sorted(i for i in ids if clipkit.normalize_text(p["clips"][i]["text"]) !=
                                    clipkit.normalize_text(f["clips"][i]["text"]))
                    same = len(ids) - len(differ)
                    print(f"  same text on {same}/{len(ids)} clips" + (f"; differ: {', '.join(differ)}" if differ else ""),
                          flush=True)
                rows.append((prec, beam, p, f, same))
                raw[f"{prec}_beam{beam}"] = pair
                _save(raw_path, total_audio, args.threads, raw, corpus)  # a cut-short run keeps what it has

    table = summary(rows, total_audio, len(ids))
    engines_note = "Parley alone" if ct2 is None else "Parley vs faster-whisper"
    record.write(args.out, f"File transcription, {engines_note}",
                 {"clips": len(ids), "total_audio_s": round(total_audio, 1), "threads": args.threads,
                  "reference_versions": reference_versions(args.ref_python) if ct2 is not None else None,
                  "rows": table}, markdown(table))
    print()
    print(markdown(table))
    print(f"results: {args.out} (every clip's text: {raw_path})")


def reference_versions(python: Path) -> dict:
    """faster-whisper's and CTranslate2's versions in the reference environment."""
    code = ("import importlib.metadata as m, json; "
            "print(json.dumps({n: m.version(n) for n in ('faster-whisper', 'ctranslate2', 'onnxruntime')}))")
    proc = subprocess.run([str(python), "-c", code], capture_output=True, text=True, check=True)
    return json.loads(proc.stdout)


if __name__ == "__main__":
    main()
