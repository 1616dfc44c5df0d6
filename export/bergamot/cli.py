"""``python -m export bergamot --from <Bergamot model folder> --out <pack> [--precision int8|fp32]``.

Exit status 0 on success (the pack folder is printed), 1 with a one-line reason on the last stderr line
otherwise (``parley translate --import`` shows that line).
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from export.bergamot.pack import PRECISIONS


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser("bergamot", help="convert a Bergamot/Marian model folder (model.*.bin, vocab.*.spm, "
                                               "lex.*.s2t.bin) into a translation pack")
    p.add_argument("--from", dest="source", required=True, type=Path,
                   help="folder with model.*.bin (e.g. model.enpt.intgemm.alphas.bin), vocab.*.spm and the shortlist")
    p.add_argument("--out", required=True, type=Path, help="pack folder to write")
    p.add_argument("--precision", default="fp32", choices=PRECISIONS,
                   help="fp32 (default: the same translations as the native engine) or int8 (faster, smaller)")
    p.add_argument("--name", help="pack name recorded in parley.json (default: bergamot-<src>-<tgt>)")
    p.add_argument("--source-lang", help="source language, when the file names do not say it (e.g. en)")
    p.add_argument("--target-lang", help="target language, when the file names do not say it (e.g. pt)")
    p.add_argument("--origin", help="where the model came from, recorded in parley.json")
    p.add_argument("--threads", type=int, default=2, help="torch threads (default 2)")
    return p


def run(args: argparse.Namespace) -> int:
    from export.bergamot.marian_file import MarianFileError
    from export.bergamot.pack import build_bergamot_pack

    try:
        out = build_bergamot_pack(args.source, args.out, args.precision, args.name, args.source_lang,
                                  args.target_lang, args.origin)
    except (MarianFileError, ValueError, FileNotFoundError) as e:  # bad input: the reason is the whole story
        print(f"error: {e}", file=sys.stderr)
        return 1
    except Exception as e:  # noqa: BLE001 - the last line is the reason, for the caller to show
        logging.getLogger("export").error("build failed", exc_info=True)
        print(f"error: {type(e).__name__}: {e}", file=sys.stderr)
        return 1
    print(out)
    return 0
