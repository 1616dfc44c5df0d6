"""Read a Marian binary model (``model.npz.bin``, ``model.*.intgemm.alphas.bin``) into float32 arrays.

The file is: uint64 version (1), uint64 item count, then per item four uint64 (name length with its
NUL, type, shape rank, data bytes), the NUL-terminated names, the int32 shapes, a uint64 pad length
and that many pad bytes (data starts on a 256-byte boundary), then each item's data, itself padded
to 256 bytes. The type is Marian's ``Type``: a class (signed 0x100, float 0x400, intgemm 0x4000, ...)
plus the element size.

intgemm8 items (type 0x4101) hold int8 weights followed by one float32: the multiplier they were
quantised with (w = q / multiplier). intgemm wants B transposed, so every weight matrix except the
embedding (which is also read row-wise as the token table) is stored as its transpose; the header
keeps the logical [in, out] shape. ``*_QuantMultA`` items are the activation multipliers Bergamot's
int8 kernels use (``int8shiftAlphaAll``); a float runtime does not need them and they are kept apart.

The model's training options are embedded as the item ``special:model.yml``.
"""

from __future__ import annotations

import dataclasses
import logging
import struct
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

BINARY_VERSION = 1
_HEADER = struct.Struct("<4Q")
_INT8, _FLOAT32, _FLOAT16, _INTGEMM8 = 0x101, 0x404, 0x402, 0x4101
_TYPES = {_INT8: "int8", _FLOAT32: "float32", _FLOAT16: "float16", _INTGEMM8: "intgemm8"}
CONFIG_ITEM = "special:model.yml"


class MarianFileError(ValueError):
    """The file is not a Marian binary model this importer reads (corrupt, truncated, unknown type)."""


@dataclasses.dataclass(frozen=True)
class MarianItem:
    name: str
    kind: str  # int8 | float32 | float16 | intgemm8 (as stored)
    shape: tuple[int, ...]  # logical shape
    value: np.ndarray  # float32 in the logical shape (intgemm8 dequantised and untransposed); raw int8 for text
    quant_mult: float | None = None  # intgemm8: the multiplier the int8 weights were stored with


@dataclasses.dataclass(frozen=True)
class MarianModel:
    path: Path
    items: dict[str, MarianItem]
    config_text: str  # the embedded model.yml ("" when the file has none)
    activation_alphas: dict[str, float]  # "<weight>_QuantMultA" → alpha, when the file carries them

    @property
    def quantized(self) -> bool:
        return any(i.kind == "intgemm8" for i in self.items.values())


def _fail(path: Path, what: str) -> MarianFileError:
    return MarianFileError(f"{path}: {what}; the file is corrupt or not a Marian binary model "
                           "(download the model again)")


def read_marian(path: str | Path) -> MarianModel:
    """Every item of the Marian binary model at `path`. Raises MarianFileError naming the file."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as e:
        raise MarianFileError(f"{path}: cannot read the model file ({e.strerror or e})") from e
    if len(data) < 16:
        raise _fail(path, f"only {len(data)} bytes")
    version, count = struct.unpack_from("<2Q", data, 0)
    if version != BINARY_VERSION:
        raise _fail(path, f"binary format version {version}, not {BINARY_VERSION}")
    if count == 0 or count > 100_000 or 16 + count * _HEADER.size > len(data):
        raise _fail(path, f"header claims {count} items")
    offset = 16
    headers = [_HEADER.unpack_from(data, offset + i * _HEADER.size) for i in range(count)]
    offset += count * _HEADER.size
    names = []
    for name_len, *_ in headers:
        raw = data[offset:offset + name_len]
        if len(raw) != name_len or not raw.endswith(b"\0"):
            raise _fail(path, "item names run past the end of the file")
        names.append(raw[:-1].decode("utf-8", errors="replace"))
        offset += name_len
    shapes = []
    for _, _, rank, _ in headers:
        if rank > 8 or offset + 4 * rank > len(data):
            raise _fail(path, "item shapes run past the end of the file")
        shapes.append(tuple(struct.unpack_from(f"<{rank}i", data, offset)))
        offset += 4 * rank
    if offset + 8 > len(data):
        raise _fail(path, "header ends early")
    (pad,) = struct.unpack_from("<Q", data, offset)
    offset += 8 + pad
    expected_end = offset + sum(h[3] for h in headers)
    if expected_end != len(data):
        raise _fail(path, f"{len(data)} bytes where the header describes {expected_end}"
                    + (" (truncated)" if expected_end > len(data) else ""))
    items: dict[str, MarianItem] = {}
    alphas: dict[str, float] = {}
    config_text = ""
    for name, (_, type_code, _, size), shape in zip(names, headers, shapes):
        chunk = memoryview(data)[offset:offset + size]
        offset += size
        kind = _TYPES.get(type_code)
        if kind is None:
            raise _fail(path, f"item {name!r} has element type 0x{type_code:x}, which this importer does not read "
                        "(int8, float16, float32 and intgemm8 are read; convert packed/fbgemm models back with "
                        "marian-conv)")
        elements = int(np.prod(shape)) if shape else 1
        if name == CONFIG_ITEM:
            config_text = bytes(chunk[:elements]).decode("utf-8", errors="replace").rstrip("\0")
            continue
        if name.endswith("_QuantMultA"):  # kept apart; a float runtime does not use them
            if kind == "float32" and elements == 1:
                alphas[name] = float(np.frombuffer(chunk, np.float32, 1)[0])
            continue
        items[name] = _item(path, name, kind, shape, chunk, elements)
    return MarianModel(path, items, config_text, alphas)


def _item(path: Path, name: str, kind: str, shape: tuple[int, ...], chunk: memoryview, elements: int) -> MarianItem:
    width = {"int8": 1, "float16": 2, "float32": 4, "intgemm8": 1}[kind]
    need = elements * width + (4 if kind == "intgemm8" else 0)
    if need > len(chunk):
        raise _fail(path, f"item {name!r} of shape {shape} needs {need} bytes, has {len(chunk)}")
    if kind == "float32":
        return MarianItem(name, kind, shape, np.frombuffer(chunk, np.float32, elements).reshape(shape).copy())
    if kind == "float16":
        return MarianItem(name, kind, shape, np.frombuffer(chunk, np.float16, elements).astype(np.float32)
                          .reshape(shape))
    if kind == "int8":
        return MarianItem(name, kind, shape, np.frombuffer(chunk, np.int8, elements).reshape(shape).copy())
    q = np.frombuffer(chunk, np.int8, elements)
    (mult,) = struct.unpack_from("<f", chunk, elements)
    if not np.isfinite(mult) or mult <= 0:
        raise _fail(path, f"item {name!r} has quantisation multiplier {mult}")
    if len(shape) != 2:
        raise _fail(path, f"intgemm8 item {name!r} has shape {shape}, not a matrix")
    rows, cols = shape
    # The token table is stored as it is; every other matrix as its transpose (see the module docstring).
    q = q.reshape(shape) if name == "Wemb" or name.endswith("_Wemb") else q.reshape(cols, rows).T
    return MarianItem(name, kind, shape, q.astype(np.float32) / np.float32(mult), float(mult))
