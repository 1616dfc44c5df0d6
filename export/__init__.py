"""Model export: PyTorch Whisper, checkpoint importers, ONNX export, quantisation and parity checks.

The only package that imports torch. What it produces is a model pack (see docs/packs.md), the whole
contract with ``engine``. ``build_pack`` is the entry point the engine's model manager runs in a
subprocess through ``python -m export whisper``.
"""

from __future__ import annotations

from pathlib import Path


def build_pack(source: str | Path, out_dir: str | Path, precision: str = "fp32", name: str = "whisper") -> Path:
    """Import a Whisper checkpoint at `source` and write an ONNX pack of `precision` to `out_dir`."""
    from export.pack import build_pack as _build

    return _build(Path(source), Path(out_dir), precision, name)
