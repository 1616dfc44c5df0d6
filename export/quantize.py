"""Precisions of a pack: int8 dynamic quantisation (CPU integer kernels) and fp16 (CUDA).

int8: onnxruntime's ``quantize_dynamic`` turns each MatMul with a constant weight into
DynamicQuantizeLinear + MatMulInteger, so activations are quantised per call and the product runs in
integer arithmetic. The convolutions of the encoder front end stay float (tiny share of the time), and
so, by default, do the MLP output projections (see ``Int8Options.float_mlp_out``).

fp16: weights and activations in half precision, graph inputs and outputs kept float32 so a runtime
that feeds float32 works unchanged; LayerNorm/Softmax stay in float32 for range.
"""

from __future__ import annotations

import dataclasses
import logging
import tempfile
from collections.abc import Callable
from pathlib import Path

import onnx

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class Int8Options:
    per_channel: bool = True  # one scale per output channel of each weight (better accuracy, same speed)
    weight_type: str = "QInt8"  # QInt8 (symmetric, signed) or QUInt8
    quantize_logits: bool = True  # the tied vocabulary projection: ~half of the decoder's weights
    # Keep the MLP output projections (fc2) in float. Their input, after GELU, has outlier channels that
    # per-tensor dynamic activation quantisation flattens. Measured on whisper-base and 7 espeak sentences:
    # greedy tokens equal to fp32 on 6/7 with fc2 float, 3/7 with everything int8 (CTranslate2's own int8:
    # 2/5); encoder on 30 s, 2 threads: 0.79 s vs 0.56 s (fp32 1.0 s); pack 186 MB vs 130 MB.
    float_mlp_out: bool = True
    reduce_range: bool = False  # 7-bit weights, for CPUs without VNNI that can overflow in u8s8

    def __post_init__(self) -> None:
        if self.weight_type not in ("QInt8", "QUInt8"):
            raise ValueError(f"weight_type must be QInt8 or QUInt8, not {self.weight_type!r}")


def _logits_matmul(model: onnx.ModelProto) -> list[str]:
    """Names of the MatMul nodes that produce the `logits` output (through a Cast at most)."""
    producers = {out: node for node in model.graph.node for out in node.output}
    node = producers.get("logits")
    while node is not None and node.op_type in ("Cast", "Identity"):
        node = producers.get(node.input[0])
    return [node.name] if node is not None and node.op_type == "MatMul" else []


def _share_quantized_embedding(model: onnx.ModelProto) -> bool:
    """Let the token lookup read the int8 copy of the tied embedding that the logits MatMul uses.

    The quantiser leaves the float [state, vocab] table in place for the Gather, which would keep
    106 MB of float32 beside its 26 MB int8 copy. The lookup becomes Gather(int8 columns) ->
    DequantizeLinear with the gathered per-column scales and zero points: same values the MatMul sees.
    """
    from onnx import helper

    inits = {t.name: t for t in model.graph.initializer}
    changed = False
    for node in list(model.graph.node):
        if node.op_type != "Gather" or f"{node.input[0]}_quantized" not in inits:
            continue
        name = node.input[0]
        scale, zero = inits.get(f"{name}_scale"), inits.get(f"{name}_zero_point")
        axis = next((a.i for a in node.attribute if a.name == "axis"), 0)
        if scale is None or zero is None or len(scale.dims) != 1 or axis != 1:
            continue  # per-tensor scales or another layout: leave the float lookup alone
        ids, out = node.input[1], node.output[0]
        index = list(model.graph.node).index(node)
        model.graph.node.remove(node)
        new_nodes = [
            helper.make_node("Gather", [f"{name}_quantized", ids], [f"{out}_q"], axis=1, name=f"{node.name}_q"),
            helper.make_node("Gather", [scale.name, ids], [f"{out}_scale"], axis=0, name=f"{node.name}_scale"),
            helper.make_node("Gather", [zero.name, ids], [f"{out}_zero"], axis=0, name=f"{node.name}_zero"),
            helper.make_node("DequantizeLinear", [f"{out}_q", f"{out}_scale", f"{out}_zero"], [out], axis=1,
                             name=f"{node.name}_dequant"),
        ]
        for offset, new in enumerate(new_nodes):
            model.graph.node.insert(index + offset, new)
        changed = True
    used = {i for n in model.graph.node for i in n.input}
    for init in list(model.graph.initializer):
        if init.name not in used:
            model.graph.initializer.remove(init)
    return changed


def _mlp_out_matmuls(model: onnx.ModelProto) -> list[str]:
    """MatMul nodes whose constant weight is [4 * d, d]: the MLP output projections (fc2)."""
    shapes = {t.name: tuple(t.dims) for t in model.graph.initializer}
    return [n.name for n in model.graph.node if n.op_type == "MatMul" and len(shape := shapes.get(n.input[1], ())) == 2
            and shape[0] == 4 * shape[1]]


def quantize_int8(src: Path, dst: Path, options: Int8Options = Int8Options()) -> None:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    graph = onnx.load(str(src), load_external_data=False)
    exclude = [] if options.quantize_logits else _logits_matmul(graph)
    if options.float_mlp_out:
        exclude += _mlp_out_matmuls(graph)
    log.info("quantising %s to int8 (%d MatMuls kept float)", src.name, len(exclude))
    quantize_dynamic(
        model_input=str(src),
        model_output=str(dst),
        op_types_to_quantize=["MatMul"],
        per_channel=options.per_channel,
        reduce_range=options.reduce_range,
        weight_type=getattr(QuantType, options.weight_type),
        nodes_to_exclude=exclude,
        extra_options={"MatMulConstBOnly": True},
    )
    quantized = onnx.load(str(dst))
    if _share_quantized_embedding(quantized):
        onnx.save(quantized, str(dst))
    ops = {n.op_type for n in quantized.graph.node}
    if "MatMulInteger" not in ops and "DynamicQuantizeMatMul" not in ops:
        raise RuntimeError(f"{dst}: quantisation produced no integer MatMul; the graph's weights may not be constants")
    log.info("quantised %s -> %s (%.1f MB)", src.name, dst, dst.stat().st_size / 1e6)


def convert_fp16(src: Path, dst: Path) -> None:
    from onnxruntime.transformers.float16 import DEFAULT_OP_BLOCK_LIST, convert_float_to_float16

    model = onnx.load(str(src))
    blocked = sorted(set(DEFAULT_OP_BLOCK_LIST) | {"LayerNormalization", "Softmax"})
    half = convert_float_to_float16(model, keep_io_types=True, op_block_list=blocked, disable_shape_infer=False)
    onnx.save(half, str(dst))
    log.info("converted %s to fp16 -> %s (%.1f MB)", src.name, dst, dst.stat().st_size / 1e6)


def to_precision(src: Path, dst: Path, precision: str, int8: Int8Options = Int8Options(),
                 fp16: Callable[[Path, Path], None] = convert_fp16) -> None:
    """One float32 graph written at ``precision``: int8 (``int8``'s options) or fp16 (through ``fp16``: the text
    packs' converter also drops the repeated Casts onnxruntime rejects)."""
    if precision == "int8":
        quantize_int8(src, dst, int8)
    elif precision == "fp16":
        fp16(src, dst)
    else:
        raise ValueError(f"convert to int8 or fp16, not {precision!r}")


def export_at_precision(export_fp32: Callable[[Path], object], names: list[str], out_dir: Path, precision: str,
                        int8: Int8Options = Int8Options(), fp16: Callable[[Path, Path], None] = convert_fp16) -> None:
    """``export_fp32(folder)`` writes float32 graphs; at fp32 into ``out_dir``, else into a temporary folder beside
    it, from which each of ``names`` is written into ``out_dir`` at ``precision``."""
    if precision == "fp32":
        export_fp32(out_dir)
        return
    with tempfile.TemporaryDirectory(prefix="parley-fp32-", dir=out_dir.parent) as tmp:
        export_fp32(Path(tmp))
        for graph in names:
            log.info("converting %s to %s", graph, precision)
            to_precision(Path(tmp) / graph, out_dir / graph, precision, int8, fp16)
