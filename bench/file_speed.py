"""File transcription: Parley vs faster-whisper, same weights, same clips, same threads, one run.

    bench/setup_reference.sh                      # once: faster-whisper in .refvenv/
    .venv/bin/python bench/file_speed.py          # int8 + fp32, beam 1 + 5, 2 threads
    PARLEY_REF_PYTHON=/path/to/venv/bin/python .venv/bin/python bench/file_speed.py \
        --packs /path/to/packs --ct2 /path/to/ct2   # a reference env, packs and CT2 model elsewhere

Each configuration runs in a fresh process (so peak RSS is its own), on identical 16 kHz float32
arrays (so audio decoding is not part of the comparison), and prints wall time, real-time factor,
peak RSS and WER with the ratio Parley / faster-whisper. Results also go to bench/results/.
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

from engine import clips as clipkit  # noqa: E402
from engine import models  # noqa: E402
from engine.audio import load_audio  # noqa: E402


def build_corpus(work: Path, with_human: bool) -> list[dict]:
    """espeak-ng English sentences joined into one long file + each sentence alone + human speech."""
    corpus = []
    english = clipkit.clips("en")
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
    ap.add_argument("--ct2", type=Path, default=None, help="CTranslate2 whisper-base folder (default: Parley's source cache)")


def reference_model(args) -> Path:
    """The CTranslate2 folder faster-whisper runs, once both it and the reference python are there."""
    ct2 = args.ct2 or (models.sources_root() / "whisper-base-ct2")
    if not (ct2 / "model.bin").exists():
        raise SystemExit(f"{ct2}/model.bin missing: run `parley models build whisper-base` first")
    if not args.ref_python.exists():
        raise SystemExit(f"{args.ref_python} missing: run bench/setup_reference.sh first")
    return ct2


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--precisions", nargs="+", default=["int8", "fp32"])
    ap.add_argument("--beams", nargs="+", type=int, default=[1, 5])
    ap.add_argument("--no-human", action="store_true", help="skip the recorded human speech clips")
    add_reference_args(ap)
    args = ap.parse_args()
    ct2 = reference_model(args)

    with tempfile.TemporaryDirectory(prefix="parley-bench-") as tmp:
        work = Path(tmp)
        corpus = build_corpus(work, not args.no_human)
        total_audio = sum(c["duration_s"] for c in corpus)
        jobs_clips = [{"id": c["id"], "npy": c["npy"]} for c in corpus]
        ids = {c["id"] for c in corpus}
        print(f"corpus: {len(corpus)} clips, {total_audio:.1f} s of audio; threads={args.threads}", flush=True)
        rows, raw = [], {}
        out_path = ROOT / "bench" / "results" / f"file_speed-{time.strftime('%Y%m%d-%H%M%S')}.json"
        for prec in args.precisions:
            pack = args.packs / f"whisper-base-{prec}" if args.packs else models.pack_dir("whisper-base", prec)
            for beam in args.beams:
                pair = {}
                for engine, python, model in (("parley", Path(sys.executable), pack),
                                              ("faster-whisper", args.ref_python, ct2)):
                    job = {"engine": engine, "model": str(model), "precision": prec, "beam_size": beam,
                           "threads": args.threads, "clips": jobs_clips, "language": None, "task": "transcribe"}
                    res = run_one(python, job, work)
                    res["wer"] = corpus_wer(corpus, res, ids)
                    pair[engine] = res
                    print(f"  {engine:<15} {prec} beam {beam}: {res['transcribe_s']:.1f} s, "
                          f"WER {res['wer']:.1f}%, RSS {res['peak_rss_mb']:.0f} MB", flush=True)
                p, f = pair["parley"], pair["faster-whisper"]
                differ = sorted(i for i in ids if clipkit.normalize_text(p["clips"][i]["text"]) !=
                                clipkit.normalize_text(f["clips"][i]["text"]))
                same = len(ids) - len(differ)
                print(f"  same text on {same}/{len(ids)} clips" + (f"; differ: {', '.join(differ)}" if differ else ""),
                      flush=True)
                rows.append((prec, beam, p, f, same))
                raw[f"{prec}_beam{beam}"] = pair
                _save(out_path, total_audio, args.threads, raw, corpus)  # a cut-short run keeps what it has

        print()
        print(f"{'config':<12} {'engine':<15} {'wall s':>8} {'RTF':>7} {'peak RSS MB':>12} {'WER %':>7} "
              f"{'load s':>7}")
        for prec, beam, p, f, same in rows:
            for name, r in (("parley", p), ("faster-whisper", f)):
                print(f"{prec + ' b' + str(beam):<12} {name:<15} {r['transcribe_s']:8.2f} "
                      f"{r['transcribe_s'] / total_audio:7.3f} {r['peak_rss_mb']:12.0f} {r['wer']:7.2f} {r['load_s']:7.2f}")
            print(f"{'':<12} {'ratio P/FW':<15} {p['transcribe_s'] / f['transcribe_s']:8.2f} {'':>7} "
                  f"{p['peak_rss_mb'] / f['peak_rss_mb']:12.2f} {p['wer'] - f['wer']:+7.2f} "
                  f"  same text on {same}/{len(ids)} clips")
        print(f"results: {out_path}")


if __name__ == "__main__":
    main()
