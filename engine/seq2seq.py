"""The one ONNX encoder–decoder runtime under Whisper and the text packs: decoder sessions, IO binding, rows.

An Optimum-layout pack holds ``decoder_model.onnx`` (the first pass: the prompt, which also returns the
cross-attention K/V of every layer) and ``decoder_with_past_model.onnx`` (one token per row per step), or one
``decoder_model_merged.onnx`` that runs both through ``use_cache_branch``. ``DecoderSessions.open`` picks them
from a pack's files; ``CachedDecoder`` is the base both runners build on (engine.whisper.runner.Decoder,
engine.translate.model.Seq2SeqModel): declared input types, one ``run`` that binds inputs and outputs when
IO binding is on (CUDA), and ``take`` — the row selection beam search needs (reorder, tile, dropping
finished rows).

With IO binding the K/V tensors are onnxruntime values on the device. ``take`` selects their rows there, by a
one-node ``Gather`` graph run with bound inputs and outputs: only the row indices go to the device, no K/V
tensor comes to the host and back. Each search algorithm stays beside its reference (Whisper's in
engine.whisper.decoding, Hugging Face's in engine.translate.decoding); this module only runs graphs.
"""

from __future__ import annotations

import dataclasses
import logging
import functools
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

from engine import runtime

log = logging.getLogger(__name__)

DTYPES = {"tensor(float)": np.float32, "tensor(float16)": np.float16, "tensor(int64)": np.int64,
          "tensor(int32)": np.int32, "tensor(bool)": np.bool_}


def input_dtypes(session: ort.InferenceSession) -> dict[str, Any]:
    """The numpy type of each input the session declares (float32 where the type is not in DTYPES)."""
    return {i.name: DTYPES.get(i.type, np.float32) for i in session.get_inputs()}


def declared_feed(declared: Mapping[str, Any], feed: Mapping[str, Any]) -> dict[str, Any]:
    """The feeds a graph declares, numpy ones cast to its declared types (fp16 hub packs), device values as
    they are; RuntimeError when the graph needs an input the runtime does not have."""
    given = {k: v if isinstance(v, ort.OrtValue) else np.ascontiguousarray(v, dtype=declared[k])
             for k, v in feed.items() if k in declared}
    missing = set(declared) - set(given)
    if missing:
        raise RuntimeError(f"{sorted(missing)[:3]}: inputs this graph needs and the runtime does not have")
    return given


@dataclasses.dataclass(frozen=True)
class DecoderSessions:
    first: ort.InferenceSession  # the prompt pass (returns the cross-attention K/V too)
    with_past: ort.InferenceSession  # one token per row after the cache; the same session when merged
    merged: bool  # one graph for both, switched by use_cache_branch

    @classmethod
    def open(cls, files: Mapping[str, Path], device: str, threads: int | None) -> DecoderSessions:
        """The pack's split decoder pair when both files are there, else its merged decoder."""
        if files["decoder"].is_file() and files["decoder_with_past"].is_file():
            return cls(runtime.create_session(files["decoder"], device, threads),
                       runtime.create_session(files["decoder_with_past"], device, threads), merged=False)
        merged = runtime.create_session(files["decoder_merged"], device, threads)
        return cls(merged, merged, merged=True)


class CachedDecoder:
    """A decoder pair run with a K/V cache. io_binding: K/V outputs stay onnxruntime values on
    device_type between steps (outputs bound there, fed back as they are); only the first
    ``host_outputs`` outputs of a run (the logits) come to the host."""

    def __init__(self, sessions: DecoderSessions, io_binding: bool, device_type: str = "cpu"):
        self.sessions = sessions
        self.first = sessions.first
        self.with_past = sessions.with_past
        self.merged = sessions.merged
        self.io_binding = io_binding
        self.device_type = device_type
        self.first_inputs = input_dtypes(sessions.first)
        self.past_inputs = input_dtypes(sessions.with_past)

    def run(self, session: ort.InferenceSession, feeds: dict[str, Any], outputs: Sequence[str],
            host_outputs: int) -> list[Any]:
        """Run with the first host_outputs outputs returned as numpy and the rest kept as they are
        (numpy without binding; device OrtValues with binding)."""
        if not self.io_binding:
            return session.run(list(outputs), feeds)
        binding = session.io_binding()
        for name, value in feeds.items():
            if isinstance(value, ort.OrtValue):
                binding.bind_ortvalue_input(name, value)
            else:
                binding.bind_cpu_input(name, value)
        for i, name in enumerate(outputs):
            if i < host_outputs:
                binding.bind_output(name, "cpu")
            else:
                binding.bind_output(name, self.device_type, 0)
        session.run_with_iobinding(binding)
        values = binding.get_outputs()
        return [v.numpy() if i < host_outputs else v for i, v in enumerate(values)]

    def take(self, values: Sequence[Any], rows: np.ndarray) -> list[Any]:
        """Rows `rows` (in that order, repeats allowed) of each tensor along axis 0: numpy arrays with
        numpy, device values on the device (no copy through the host)."""
        rows = np.asarray(rows, dtype=np.int64)
        if not values or not isinstance(values[0], ort.OrtValue):
            return [np.take(v, rows, axis=0) for v in values]
        return device_gather(self.device_type, values, rows)


# -- rows on the device -------------------------------------------------------------------------------------

_ONNX_TYPES = {np.dtype(np.float32): 1, np.dtype(np.float16): 10, np.dtype(np.int64): 7,
               np.dtype(np.int32): 6, np.dtype(np.bool_): 9}
_ORT_TYPES = {"tensor(float)": 1, "tensor(float16)": 10, "tensor(int64)": 7, "tensor(int32)": 6, "tensor(bool)": 9}


def device_gather(device_type: str, values: Sequence[ort.OrtValue], rows: np.ndarray) -> list[ort.OrtValue]:
    """Gather(values[i], rows, axis=0) for every value in one run of a bound graph, on device_type."""
    elem = _ORT_TYPES[values[0].data_type()]
    session = runtime.graph_session(gather_model(elem, len(values)), f"gather-{elem}x{len(values)}", device_type, 1)
    binding = session.io_binding()
    binding.bind_cpu_input("rows", np.ascontiguousarray(rows, dtype=np.int64))
    for i, value in enumerate(values):
        binding.bind_ortvalue_input(f"x{i}", value)
        binding.bind_output(f"y{i}", device_type, 0)
    session.run_with_iobinding(binding)
    return list(binding.get_outputs())


@functools.lru_cache(maxsize=None)
def gather_model(elem_type: int, count: int) -> bytes:
    """A serialised ONNX model (opset 13): inputs x0..x{count-1} (elem_type, any shape) and rows (int64
    [n]); outputs y_i = Gather(x_i, rows, axis=0). Written as protobuf bytes here, so the engine needs no
    ``onnx`` package to run it."""
    def tensor_info(name: str, elem: int) -> bytes:
        tensor_type = _key(1, 0) + _varint(elem)  # TypeProto.Tensor.elem_type; shape left unknown
        return _field(1, name.encode()) + _field(2, _field(1, tensor_type))  # ValueInfoProto{name, type}

    graph = b""
    for i in range(count):  # NodeProto{input, input, output, name, op_type}
        node = (_field(1, f"x{i}".encode()) + _field(1, b"rows") + _field(2, f"y{i}".encode())
                + _field(3, f"gather{i}".encode()) + _field(4, b"Gather"))
        graph += _field(1, node)
    graph += _field(2, b"rows")  # GraphProto.name
    graph += b"".join(_field(11, tensor_info(f"x{i}", elem_type)) for i in range(count))
    graph += _field(11, tensor_info("rows", 7))
    graph += b"".join(_field(12, tensor_info(f"y{i}", elem_type)) for i in range(count))
    opset = _field(1, b"") + _key(2, 0) + _varint(13)  # OperatorSetIdProto{domain "", version 13}
    # ModelProto{ir_version 7, producer_name, graph, opset_import}
    return _key(1, 0) + _varint(7) + _field(2, b"parley") + _field(7, graph) + _field(8, opset)


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _key(number: int, wire_type: int) -> bytes:
    return _varint(number << 3 | wire_type)


def _field(number: int, payload: bytes) -> bytes:
    """A length-delimited protobuf field (strings, bytes and nested messages)."""
    return _key(number, 2) + _varint(len(payload)) + payload
