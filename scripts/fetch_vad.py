"""Download the pinned Silero VAD model (from the silero-vad wheel on PyPI) into Parley's packs folder.

    python scripts/fetch_vad.py [--dest DIR] [--wheel silero_vad-6.2.3-py3-none-any.whl]
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from engine.errors import ParleyError  # noqa: E402
from engine.audio.vad import SILERO_SHA256, SILERO_VERSION, fetch_model  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dest", type=Path, help="folder for silero_vad.onnx (default: the packs root)")
    parser.add_argument("--wheel", type=Path, help="use this silero-vad wheel instead of downloading it")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        path = fetch_model(args.dest, wheel=args.wheel)
    except ParleyError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(f"{path}  (silero-vad {SILERO_VERSION}, sha256 {SILERO_SHA256})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
