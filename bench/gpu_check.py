"""The checks a GPU machine is for, in one go (``bench/gpu_check.sh`` runs it after building the fp16 pack).

    .venv/bin/python bench/gpu_check.py                         # CUDA: fp32 and fp16 packs, CPU int8 beside them
    .venv/bin/python bench/gpu_check.py --device cpu --clips 2   # the same checks on the CPU (a dry run)

1. Provider: each pack is loaded with ``--device``; the provider its sessions really run on is reported,
   and whether the decoder keeps its K/V cache on the device through IO binding. Asking for CUDA and
   getting the CPU fails the check (the reason onnxruntime gave is printed).
2. Transcripts: every clip (espeak-ng English sentences, greedy, language given) with each pack; fp16's
   text must equal fp32's on at least 90 % of the clips, and WER is printed for each.
3. File speed: wall time and real-time factor per pack over the same clips (the first clip of each pack is
   run once before timing: CUDA kernels are compiled and tuned on first use).
4. Decode step: milliseconds per token of the decoder (batch 1 and batch 5 = beam search), with and
   without IO binding (the K/V cache kept on the device between steps vs. copied to the host and back),
   over 100 steps after a prompt; and milliseconds per beam reorder (batch 5, each step's self-attention
   K/V rows reordered as beam search does), with IO binding selected on the device by the shared runtime.

Prints a table and writes bench/results/gpu_check-<time>.json. Exit status 0 when every check passes.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench import clips as clipkit  # noqa: E402
from engine import runtime  # noqa: E402
from engine.packs.installed import is_pack_dir  # noqa: E402
from engine.packs.paths import packs_root  # noqa: E402
from engine.audio.decode import load_audio  # noqa: E402
from engine.features import N_FRAMES, log_mel_spectrogram, pad_or_trim  # noqa: E402

AGREE = 0.9  # fp16 text equal to fp32 on at least this share of clips


def environment() -> dict:
    import onnxruntime as ort

    try:
        smi = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=30).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        smi = "nvidia-smi not found"
    providers, reason = runtime.resolve_device("cuda")
    return {"onnxruntime": ort.__version__, "available_providers": ort.get_available_providers(),
            "cuda_usable": runtime.CUDA in providers, "cuda_reason": reason, "nvidia_smi": smi}


def _timed_steps(model, mel: np.ndarray, batch: int, steps: int, io_binding: bool, reorder: bool) -> float:
    """Median ms per decoder step (or, with ``reorder``, per beam reorder of the self-attention K/V after each
    step: the cache grows by one position a step, as in beam search) over `steps` steps of `batch` rows."""
    decoder = model.decoder
    saved = decoder.io_binding
    decoder.io_binding = io_binding
    try:
        audio = model.encode(mel)
        prompt = model.tokenizer.sot_sequence("en", "transcribe") + [model.tokenizer.special.no_timestamps]
        _, cache = decoder.prefill(audio, prompt)  # K/V as device values with binding, numpy without
        cache = decoder.tile(cache, batch)
        token = np.full(batch, model.tokenizer.encode(" the")[0], dtype=np.int64)
        source = np.roll(np.arange(batch), 1)  # never the identity, which reorder skips
        times = []
        for _ in range(steps):
            t0 = time.perf_counter()
            decoder.step(cache, token)
            if reorder:
                t0 = time.perf_counter()
                decoder.reorder(cache, source)
            times.append(time.perf_counter() - t0)
        return 1000 * statistics.median(times[5:] or times)
    finally:
        decoder.io_binding = saved


def decode_step_ms(model, mel: np.ndarray, batch: int, steps: int, io_binding: bool) -> float:
    """Median ms per decoder step over `steps` steps of `batch` rows after the prompt."""
    return _timed_steps(model, mel, batch, steps, io_binding, reorder=False)


def reorder_ms(model, mel: np.ndarray, batch: int, steps: int, io_binding: bool) -> float:
    """Median ms per beam reorder of the self-attention K/V over `steps` decoder steps of `batch` rows
    (only the reorder is timed)."""
    return _timed_steps(model, mel, batch, steps, io_binding, reorder=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cuda", choices=("cuda", "cpu"))
    ap.add_argument("--packs", type=Path, help="folder of whisper-base-<precision> packs (default: the pack cache)")
    ap.add_argument("--precisions", nargs="+", default=None,
                    help="default: fp32 fp16 on cuda (plus int8 on the CPU for comparison), int8 fp32 on cpu")
    ap.add_argument("--clips", type=int, default=20, help="how many espeak-ng sentences (default 20)")
    ap.add_argument("--steps", type=int, default=100, help="decoder steps timed per setting")
    ap.add_argument("--threads", type=int, default=2, help="CPU threads (the CPU reference and the CPU dry run)")
    ap.add_argument("--out", type=Path, help="JSON results (default bench/results/gpu_check-<time>.json)")
    args = ap.parse_args()
    from engine.whisper import WhisperModel
    from engine.whisper.transcribe import TranscribeOptions

    env = environment()
    print(f"onnxruntime {env['onnxruntime']}; providers {', '.join(env['available_providers'])}")
    print(f"GPU: {env['nvidia_smi'] or '(none listed)'}; CUDA usable: {env['cuda_usable']} ({env['cuda_reason']})")
    precisions = args.precisions or (["fp32", "fp16"] if args.device == "cuda" else ["int8", "fp32"])
    runs = [(p, args.device) for p in precisions]
    if args.device == "cuda" and args.precisions is None:
        runs.append(("int8", "cpu"))  # the CPU reference: what the GPU is compared with
    packs = args.packs or packs_root()
    failures: list[str] = []
    results: dict = {"environment": env, "device": args.device, "runs": {}}
    with tempfile.TemporaryDirectory(prefix="parley-gpu-") as tmp:
        corpus = []
        for clip in clipkit.clips("en")[: args.clips]:
            corpus.append((clip.id, load_audio(clipkit.synthesize(clip, tmp)), clip.text))
        total_s = sum(a.size for _, a, _ in corpus) / 16000
        mel = pad_or_trim(log_mel_spectrogram(corpus[0][1], 80), N_FRAMES)
        print(f"{len(corpus)} clips, {total_s:.1f} s of audio\n")
        for precision, device in runs:
            pack = packs / f"whisper-base-{precision}"
            key = f"{precision}-{device}"
            if not is_pack_dir(pack):
                failures.append(f"{key}: no pack at {pack} (parley models build whisper-base --precision {precision})")
                continue
            t0 = time.perf_counter()
            model = WhisperModel.load(pack, device=device, threads=args.threads)
            load_s = time.perf_counter() - t0
            run = {"pack": str(pack), "provider": model.provider, "io_binding": model.decoder.io_binding,
                   "load_s": load_s}
            if device == "cuda" and model.provider != runtime.CUDA:
                failures.append(f"{key}: asked for CUDA, runs on {model.provider} ({model.device_reason})")
            options = TranscribeOptions(language="en", beam_size=1)
            model.transcribe(corpus[0][1], options)  # warm-up: kernels compiled/tuned on first use
            texts, t0 = {}, time.perf_counter()
            for cid, audio, _ in corpus:
                texts[cid] = model.transcribe(audio, options).text.strip()
            wall = time.perf_counter() - t0
            run.update(texts=texts, wall_s=wall, rtf=wall / total_s,
                       wer=float(np.mean([clipkit.wer(ref, texts[cid]) for cid, _, ref in corpus])))
            binding = [False, True]  # on the CPU too: the binding path is then exercised by the dry run
            run["step_ms"] = {f"batch{b}{'-iobinding' if io else ''}": decode_step_ms(model, mel, b, args.steps, io)
                              for b in (1, 5) for io in binding}
            run["reorder_ms"] = {f"batch5{'-iobinding' if io else ''}": reorder_ms(model, mel, 5, args.steps, io)
                                 for io in binding}
            results["runs"][key] = run
            print(f"{key:10s} provider {model.provider:22s} io_binding {str(run['io_binding']):5s} load {load_s:5.2f} s  "
                  f"wall {wall:6.2f} s  RTF {run['rtf']:.4f}  WER {100 * run['wer']:.1f}%  "
                  + "  ".join(f"{k} {v:.2f} ms/step" for k, v in run["step_ms"].items())
                  + "  " + "  ".join(f"reorder {k} {v:.3f} ms" for k, v in run["reorder_ms"].items()))
            del model
    by_precision = {k.split("-")[0]: r for k, r in results["runs"].items() if k.endswith(args.device)}
    if "fp16" in by_precision and "fp32" in by_precision:
        a, b = by_precision["fp32"]["texts"], by_precision["fp16"]["texts"]
        same = sum(a[k] == b[k] for k in a)
        results["fp16_equals_fp32"] = f"{same}/{len(a)}"
        print(f"\nfp16 text equal to fp32 on {same}/{len(a)} clips")
        if same < AGREE * len(a):
            failures.append(f"fp16 equals fp32 on only {same}/{len(a)} clips (want ≥ {AGREE:.0%})")
            for k in a:
                if a[k] != b[k]:
                    print(f"  {k}: fp32 {a[k]!r}\n  {' ' * len(k)}  fp16 {b[k]!r}")
    results["failures"] = failures
    out = args.out or ROOT / "bench" / "results" / f"gpu_check-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=1) + "\n")
    print(f"\nresults: {out}")
    for f in failures:
        print(f"FAILED: {f}")
    print("all checks passed" if not failures else f"{len(failures)} check(s) failed")
    return 0 if not failures else 1


if __name__ == "__main__":
    sys.exit(main())
