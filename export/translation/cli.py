"""``python -m export translation --from <HF model dir> --out <pack> [--precision fp32|int8|fp16]``.

Exit status 0 on success (the pack folder is printed), 1 with a one-line reason on stderr otherwise.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path


def add_parser(subparsers) -> argparse.ArgumentParser:
    """The ``translation`` command of ``python -m export``."""
    p = subparsers.add_parser("translation", help="convert a Marian / NLLB-200 / M2M100 model into an ONNX pack")
    return add_arguments(p)


def add_arguments(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
    p.add_argument("--from", dest="source", required=True, type=Path,
                   help="Hugging Face model folder (config.json, model.safetensors, tokenizer files)")
    p.add_argument("--out", required=True, type=Path, help="pack folder to write")
    p.add_argument("--precision", default="fp32", choices=("fp32", "int8", "fp16"))
    p.add_argument("--name", help="pack name recorded in parley.json (default: the source folder's name)")
    p.add_argument("--source-lang", help="Marian: comma-separated source languages when the name does not say them")
    p.add_argument("--target-lang", help="Marian: comma-separated target languages when the name does not say them")
    p.add_argument("--origin", help="where the model came from, recorded in parley.json")
    p.add_argument("--merged", action="store_true",
                   help="one decoder_model_merged.onnx (weights stored once: a smaller pack) instead of two decoders")
    p.add_argument("--threads", type=int, default=2, help="torch threads (default 2)")
    p.add_argument("--parity", action="store_true", help="after building, compare the pack with torch")
    return p


def run(args: argparse.Namespace) -> int:
    try:
        import torch
    except ImportError as e:
        print(f"error: building a model pack needs PyTorch: {e}", file=sys.stderr)
        return 1
    torch.set_num_threads(args.threads)
    from export.translation.pack import build_translation_pack, load_model

    def langs(value: str | None) -> list[str] | None:
        return [v.strip() for v in value.split(",") if v.strip()] if value else None

    try:
        out = build_translation_pack(args.source, args.out, args.precision, args.name, langs(args.source_lang),
                                     langs(args.target_lang), args.origin, merged=args.merged)
        if args.parity:
            from export.translation.parity import parity_of_pack

            print(parity_of_pack(out, load_model(args.source)).summary(), file=sys.stderr)
    except Exception as e:  # the last line is the reason, for the model manager to show
        logging.getLogger("export").error("build failed", exc_info=True)
        print(f"error: {type(e).__name__}: {e}", file=sys.stderr)
        return 1
    print(out)
    return 0


def main(argv: list[str] | None = None) -> int:
    from export.__main__ import _quiet_third_party

    parser = add_arguments(argparse.ArgumentParser(prog="python -m export.translation",
                                                   description="Build a text-translation pack (needs torch)."))
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(name)s: %(message)s",
                        datefmt="%H:%M:%S")
    _quiet_third_party()
    logging.getLogger("onnx_ir").setLevel(logging.WARNING)
    return run(args)
