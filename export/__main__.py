"""``python -m export whisper --from <source> --out <pack dir> [--precision fp32|int8|fp16] [--name NAME]``

``python -m export merge-decoder <pack> [--out <new pack>]``: an existing pack's two decoder files
become one ``decoder_model_merged.onnx`` (weights stored and loaded once); needs no torch.

Progress goes to stderr. Exit status 0 on success, 1 with a one-line reason on the last stderr line
otherwise (the engine's model manager shows that line to the user).
"""

from __future__ import annotations

import argparse
import logging
import sys
import warnings
from pathlib import Path


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m export", description="Build Parley model packs (needs torch).")
    sub = parser.add_subparsers(dest="command", required=True)
    w = sub.add_parser("whisper", help="convert a Whisper checkpoint into an ONNX pack")
    w.add_argument("--from", dest="source", required=True, type=Path,
                   help="CTranslate2 folder (model.bin), OpenAI .pt file, or Hugging Face folder (model.safetensors)")
    w.add_argument("--out", required=True, type=Path, help="pack folder to write")
    w.add_argument("--precision", default="fp32", choices=("fp32", "int8", "fp16"))
    w.add_argument("--name", default="whisper", help="pack name recorded in parley.json (e.g. whisper-base)")
    w.add_argument("--tokenizer", type=Path, help="tokenizer.json, when the source folder has none (OpenAI .pt)")
    w.add_argument("--origin", help="where the source came from, recorded in parley.json")
    w.add_argument("--int8-all", action="store_true",
                   help="int8: quantise the MLP output projections too (smaller, faster encoder, less faithful)")
    w.add_argument("--threads", type=int, default=2, help="torch and onnxruntime threads (default 2)")
    w.add_argument("--parity", action="store_true", help="after building, compare the pack with torch on speech")
    w.add_argument("--separate-decoders", action="store_true",
                   help="write decoder_model.onnx + decoder_with_past_model.onnx (each with every decoder weight) "
                        "instead of one decoder_model_merged.onnx")
    m = sub.add_parser("merge-decoder", help="merge an existing pack's two decoder graphs into one (weights once)")
    m.add_argument("pack", type=Path, help="pack folder with decoder_model.onnx + decoder_with_past_model.onnx")
    m.add_argument("--out", type=Path, help="write the merged pack here (a new or empty folder); default: in place")
    from export.train.cli import add_parsers as add_train_parsers

    add_train_parsers(sub)
    from export.translation.cli import add_parser as add_translation_parser

    add_translation_parser(sub)
    from export.bergamot.cli import add_parser as add_bergamot_parser

    add_bergamot_parser(sub)
    return parser


def _quiet_third_party() -> None:
    for name in ("onnx_ir", "onnxscript", "torch.onnx", "torch.export", "torch._dynamo", "torch.fx"):
        logging.getLogger(name).setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", module=r"torch\..*")
    warnings.filterwarnings("ignore", module=r"onnxscript\..*")


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(name)s: %(message)s",
                        datefmt="%H:%M:%S")
    _quiet_third_party()
    if args.command == "merge-decoder":
        return _merge_decoder(args)
    try:
        import torch
    except ImportError as e:
        print(f"error: building a model pack needs PyTorch: {e}", file=sys.stderr)
        return 1
    torch.set_num_threads(getattr(args, "threads", None) or 2)
    if args.command == "translation":
        from export.translation.cli import run as run_translation

        return run_translation(args)
    if args.command == "bergamot":
        from export.bergamot.cli import run as run_bergamot

        return run_bergamot(args)
    if args.command in ("train", "learn"):
        from export.train.cli import run as run_train

        return run_train(args)
    from export.pack import build_pack
    from export.quantize import Int8Options

    try:
        int8 = Int8Options(float_mlp_out=not args.int8_all)
        out = build_pack(args.source, args.out, args.precision, args.name, args.tokenizer, args.origin, int8,
                         merged_decoder=not args.separate_decoders)
        if args.parity:
            from export.parity import parity_of_pack

            print(parity_of_pack(out, args.source, threads=args.threads).summary(), file=sys.stderr)
    except Exception as e:  # the CLI's last line is the reason, for the model manager to show
        logging.getLogger("export").error("build failed", exc_info=True)
        print(f"error: {type(e).__name__}: {e}", file=sys.stderr)
        return 1
    print(out)
    return 0


def _merge_decoder(args) -> int:
    from export.merge_decoders import merge_pack

    try:
        out = merge_pack(args.pack, args.out)
    except Exception as e:  # noqa: BLE001 - the last line is the reason
        logging.getLogger("export").error("merge failed", exc_info=True)
        print(f"error: {type(e).__name__}: {e}", file=sys.stderr)
        return 1
    print(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
