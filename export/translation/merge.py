"""One decoder graph for both steps: ``decoder_model_merged.onnx`` as Optimum writes it.

An ``If`` on the ``use_cache_branch`` input runs the first-step graph (else branch) or the graph with
past (then branch); the latter passes the cross K/V it was given through as ``present.*.encoder.*``,
so both branches return the same outputs. The weights move to the outer graph once: initialisers
equal in both graphs (all of them, for the same model and precision) are stored once, which makes
the pack smaller than the separate pair.
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path

import onnx
from onnx import TensorProto, helper

log = logging.getLogger(__name__)


def _key(t: onnx.TensorProto) -> tuple:
    return (t.data_type, tuple(t.dims), hashlib.sha256(onnx.numpy_helper.to_array(t).tobytes()).hexdigest())


def _renamed(info: onnx.ValueInfoProto, name: str, keep_shape: bool = True) -> onnx.ValueInfoProto:
    out = onnx.ValueInfoProto()
    out.CopyFrom(info)
    out.name = name
    if not keep_shape:  # the branches differ in the self K/V length: rank only, every axis symbolic
        for i, dim in enumerate(out.type.tensor_type.shape.dim):
            dim.Clear()
            dim.dim_param = f"{name}_dim{i}"
    return out


def _branch(model: onnx.ModelProto, prefix: str, shared: dict[tuple, str], outer: list[onnx.TensorProto],
            io_names: set[str]) -> onnx.GraphProto:
    """The model's graph as an If branch: internal names prefixed, weights moved to `outer` (deduplicated)."""
    g = model.graph
    rename: dict[str, str] = {}
    for init in g.initializer:
        key = _key(init)
        if key not in shared:
            shared[key] = f"{prefix}{init.name}"
            copy = onnx.TensorProto()
            copy.CopyFrom(init)
            copy.name = shared[key]
            outer.append(copy)
        rename[init.name] = shared[key]
    for node in g.node:
        for out in node.output:
            if out and out not in io_names:
                rename[out] = f"{prefix}{out}"
    outputs = []
    for o in g.output:  # a branch returns its own names; the If node gives them the outer ones
        rename[o.name] = f"{prefix}{o.name}"
        outputs.append(_renamed(o, rename[o.name]))
    nodes = []
    for node in g.node:
        new = onnx.NodeProto()
        new.CopyFrom(node)
        new.name = f"{prefix}{node.name}"
        new.input[:] = [rename.get(i, i) for i in node.input]
        new.output[:] = [rename.get(o, o) for o in node.output]
        nodes.append(new)
    return helper.make_graph(nodes, f"{prefix}branch", [], outputs)


def merge_decoders(decoder: Path, decoder_with_past: Path, out: Path) -> Path:
    first, later = onnx.load(str(decoder)), onnx.load(str(decoder_with_past))
    outputs = [o.name for o in first.graph.output]  # logits, present.{i}.decoder.*, present.{i}.encoder.*
    inputs = {i.name: i for i in [*first.graph.input, *later.graph.input]}
    io_names = set(inputs) | set(outputs)
    shared: dict[tuple, str] = {}
    weights: list[onnx.TensorProto] = []
    else_branch = _branch(first, "first/", shared, weights, io_names)
    then_branch = _branch(later, "past/", shared, weights, io_names)
    given = {o.name for o in later.graph.output}
    for name in outputs:  # the cross K/V: passed through from the inputs
        if name not in given:
            source = name.replace("present.", "past_key_values.")
            then_branch.node.append(helper.make_node("Identity", [source], [f"past/{name}"], name=f"past/pass_{name}"))
            then_branch.output.append(_renamed(inputs[source], f"past/{name}"))
    order = {f"past/{n}": i for i, n in enumerate(outputs)}
    then_outputs = sorted(then_branch.output, key=lambda o: order[o.name])
    del then_branch.output[:]
    then_branch.output.extend(then_outputs)
    flag = helper.make_tensor_value_info("use_cache_branch", TensorProto.BOOL, [1])
    node = helper.make_node("If", ["use_cache_branch"], outputs, then_branch=then_branch, else_branch=else_branch,
                            name="optimum::if")
    graph_outputs = [_renamed(o, o.name, keep_shape=False) for o in first.graph.output]
    graph = helper.make_graph([node], "merged_decoder", [*inputs.values(), flag], graph_outputs, weights)
    merged = helper.make_model(graph, opset_imports=first.opset_import, ir_version=first.ir_version)
    onnx.checker.check_model(merged)
    onnx.save(merged, str(out))
    log.info("merged %s + %s -> %s (%.1f MB, %d shared weights)", decoder.name, decoder_with_past.name, out.name,
             out.stat().st_size / 1e6, len(weights))
    return out
