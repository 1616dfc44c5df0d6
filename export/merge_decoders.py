"""One decoder graph for both steps: ``decoder_model_merged.onnx`` in the Hugging Face Optimum layout.

A pack with ``decoder_model.onnx`` (prompt pass) and ``decoder_with_past_model.onnx`` (steps) holds
the decoder's weights twice, and onnxruntime loads them twice (two sessions). The merged graph has a
single ``If`` node on a boolean input ``use_cache_branch``:

- else branch (``use_cache_branch`` False): the first-step graph. The past K/V inputs are declared
  (Optimum's convention) but not read; a caller feeds them with 0 positions.
- then branch (True): the graph with past. Outputs only the first-step graph has (``present.{i}.encoder.*``,
  Whisper's ``cross_attentions``) are empty tensors of their type and rank there, so both branches
  return the same list. A caller keeps the cross K/V of the first pass (as Optimum's runtime and
  transformers.js do: they reuse the past cross K/V and ignore these outputs). Passing the inputs
  through with Identity instead, as some Optimum versions write it, copies the whole cross K/V on every
  step: measured on whisper-base int8, beam 5, 2 threads, 10-15 ms more per step (~25 %).

Weights move to the outer graph, where both branches read them as outer-scope values; initialisers with
the same type, shape and bytes are stored once (for one model and precision that is every weight of
the graph with past: the pair's names differ, their bytes do not). Works on any precision the exporter
writes (fp32, fp16 with float32 I/O, int8 dynamic quantisation) since only names and initialisers move.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from engine.packs.files import sha256_file

log = logging.getLogger(__name__)

MERGED_FILE = "decoder_model_merged.onnx"
USE_CACHE = "use_cache_branch"
_TWO_GB = 2**31 - 1


def _key(t: TensorProto) -> tuple:
    """Identity of an initialiser's value: type, shape and a hash of its bytes (not its name)."""
    if t.data_location == TensorProto.EXTERNAL:
        raise ValueError(f"initialiser {t.name} is still external: load the model with its data")
    data = t.raw_data if t.HasField("raw_data") else numpy_helper.to_array(t).tobytes()
    return t.data_type, tuple(t.dims), hashlib.sha256(data).hexdigest()


def _value_info(info: onnx.ValueInfoProto, name: str, symbolic: bool = False) -> onnx.ValueInfoProto:
    out = onnx.ValueInfoProto()
    out.CopyFrom(info)
    out.name = name
    if symbolic:  # the branches differ in some lengths (self K/V): keep the rank, every axis a symbol
        for i, dim in enumerate(out.type.tensor_type.shape.dim):
            dim.Clear()
            dim.dim_param = f"{name}_dim{i}"
    return out


def _subgraph_names(graph: onnx.GraphProto) -> set[str]:
    names: set[str] = set()
    for node in graph.node:
        for attr in node.attribute:
            for sub in [attr.g] if attr.type == onnx.AttributeProto.GRAPH else list(attr.graphs):
                names |= {o for n in sub.node for o in n.output} | {i.name for i in sub.initializer}
                names |= _subgraph_names(sub)
    return names


def _topological(nodes: list[onnx.NodeProto], available: set[str]) -> list[onnx.NodeProto]:
    """`nodes` with every node after the producers of its inputs, otherwise in their order (the fp16
    converter appends its input casts at the end: onnxruntime does not mind, the checker does)."""
    known = set(available)
    produced = {o for n in nodes for o in n.output if o}
    pending, ordered = list(nodes), []
    while pending:
        deferred = []
        for node in pending:  # one sweep keeps a sorted graph as it is
            if all(not i or i in known or i not in produced for i in node.input):
                ordered.append(node)
                known.update(node.output)
            else:
                deferred.append(node)
        if len(deferred) == len(pending):
            raise ValueError(f"a cycle among {len(pending)} nodes, e.g. {pending[0].name}")
        pending = deferred
    return ordered


def _branch(model: onnx.ModelProto, prefix: str, shared: dict[tuple, str], weights: list[TensorProto],
            outer_names: set[str]) -> onnx.GraphProto:
    """The model's graph as an If branch: weights moved to `weights` (deduplicated by value), every
    other name it defines prefixed so neither branch can shadow an outer or sibling name."""
    g = model.graph
    if g.sparse_initializer:
        raise ValueError(f"{g.name}: sparse initialisers are not supported")
    if _subgraph_names(g):
        raise ValueError(f"{g.name}: graphs with nested subgraphs are not supported")
    rename: dict[str, str] = {}
    for init in g.initializer:
        key = _key(init)
        if key not in shared:
            shared[key] = f"{prefix}{init.name}"
            moved = TensorProto()
            moved.CopyFrom(init)
            moved.name = shared[key]
            weights.append(moved)
        rename[init.name] = shared[key]
    inputs = {i.name for i in g.input}
    if not inputs <= outer_names:
        raise ValueError(f"{g.name}: inputs {sorted(inputs - outer_names)} are not inputs of the merged graph")
    for node in g.node:
        for out in node.output:
            if out:
                rename[out] = f"{prefix}{out}"
    nodes = []
    for node in g.node:
        new = onnx.NodeProto()
        new.CopyFrom(node)
        new.name = f"{prefix}{node.name}"
        new.input[:] = [rename.get(i, i) for i in node.input]
        new.output[:] = [rename.get(o, o) for o in node.output]
        nodes.append(new)
    nodes = _topological(nodes, outer_names | set(rename.values()) - {o for n in nodes for o in n.output})
    # Shape hints for what the branch computes (onnxruntime plans and fuses with them: without them the
    # logits move by ~1e-5). Not for the weights: the fp16 converter leaves float32 hints on initialisers
    # it made float16, which a main graph ignores and an If branch rejects.
    produced = {o for n in g.node for o in n.output}
    value_info = [_value_info(v, rename[v.name]) for v in g.value_info if v.name in produced]
    outputs = []
    for o in g.output:  # a branch returns its own names; the If node gives them the outer ones
        name = rename.get(o.name, o.name)
        if name in outer_names or name not in {x for n in nodes for x in n.output}:  # an input or a weight
            nodes.append(helper.make_node("Identity", [name], [f"{prefix}{o.name}"], name=f"{prefix}out_{o.name}"))
            name = f"{prefix}{o.name}"
        outputs.append(_value_info(o, name))
    return helper.make_graph(nodes, f"{prefix.rstrip('/')}_branch", [], outputs, value_info=value_info)


def _stand_in(output: onnx.ValueInfoProto, prefix: str) -> tuple[onnx.NodeProto, onnx.ValueInfoProto]:
    """A then-branch output for one the graph with past lacks: an empty tensor (every axis 0) of the
    output's type and rank."""
    name = f"{prefix}{output.name}"
    tensor_type = output.type.tensor_type
    rank = len(tensor_type.shape.dim)
    empty = numpy_helper.from_array(np.zeros([0] * rank, dtype=helper.tensor_dtype_to_np_dtype(tensor_type.elem_type)))
    return (helper.make_node("Constant", [], [name], value=empty, name=f"{prefix}empty_{output.name}"),
            helper.make_tensor_value_info(name, tensor_type.elem_type, [0] * rank))


def merge_models(first: onnx.ModelProto, with_past: onnx.ModelProto) -> onnx.ModelProto:
    """The merged decoder of a first-step graph and a graph with past (both with their weights loaded).

    Inputs: the union of both (first-step order, then the past K/V), then ``use_cache_branch`` (bool [1]).
    Outputs: the first-step graph's, in its order."""
    outputs = [o.name for o in first.graph.output]
    later_outputs = {o.name for o in with_past.graph.output}
    if not later_outputs <= set(outputs):
        raise ValueError(f"the graph with past has outputs the first-step graph lacks: "
                         f"{sorted(later_outputs - set(outputs))}")
    inputs: dict[str, onnx.ValueInfoProto] = {}
    for i in [*first.graph.input, *with_past.graph.input]:
        if i.name in inputs and inputs[i.name].type.tensor_type.elem_type != i.type.tensor_type.elem_type:
            raise ValueError(f"input {i.name} has different types in the two graphs")
        inputs.setdefault(i.name, i)
    if USE_CACHE in inputs:
        raise ValueError(f"the decoders already have a {USE_CACHE} input: already merged?")
    outer_names = set(inputs) | {USE_CACHE}
    shared: dict[tuple, str] = {}
    weights: list[TensorProto] = []
    else_branch = _branch(first, "first/", shared, weights, outer_names)
    n_first = len(weights)
    then_branch = _branch(with_past, "past/", shared, weights, outer_names)
    then_outputs = []
    given = dict(zip((o.name for o in with_past.graph.output), then_branch.output))
    for out in first.graph.output:
        if out.name in given:
            then_outputs.append(given[out.name])
        else:
            node, info = _stand_in(out, "past/")
            then_branch.node.append(node)
            then_outputs.append(info)
    del then_branch.output[:]
    then_branch.output.extend(then_outputs)
    flag = helper.make_tensor_value_info(USE_CACHE, TensorProto.BOOL, [1])
    node = helper.make_node("If", [USE_CACHE], outputs, then_branch=then_branch, else_branch=else_branch,
                            name="optimum::if")
    graph_outputs = [_value_info(o, o.name, symbolic=True) for o in first.graph.output]
    graph = helper.make_graph([node], "decoder_merged", [*inputs.values(), flag], graph_outputs, weights)
    opsets: dict[str, int] = {}
    for op in [*first.opset_import, *with_past.opset_import]:
        opsets[op.domain] = max(opsets.get(op.domain, 0), op.version)
    merged = helper.make_model(graph, opset_imports=[helper.make_opsetid(d, v) for d, v in opsets.items()],
                               ir_version=max(first.ir_version, with_past.ir_version),
                               producer_name="parley.merge_decoders")
    log.info("merged decoders: %d weights (%d of the graph with past shared with the first step)",
             len(weights), len(with_past.graph.initializer) - (len(weights) - n_first))
    return merged


def weight_bytes(model: onnx.ModelProto) -> int:
    return sum(len(t.raw_data) if t.HasField("raw_data") else numpy_helper.to_array(t).nbytes
               for t in model.graph.initializer)


def save(model: onnx.ModelProto, path: Path) -> list[Path]:
    """Write one self-contained file below 2 GB, else the weights to ``<name>.data`` beside it.
    Returns the files written; written to a temporary name first, so `path` is complete or absent."""
    path = Path(path)
    external = weight_bytes(model) >= _TWO_GB
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    os.close(fd)
    try:
        if external:
            onnx.save(model, tmp, save_as_external_data=True, all_tensors_to_one_file=True,
                      location=f"{path.name}.data", size_threshold=1024)
        else:
            onnx.save(model, tmp)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp's 0600 is for secrets, not a model file
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return [path, path.with_name(f"{path.name}.data")] if external else [path]


def merge_decoders(decoder: Path, decoder_with_past: Path, out: Path, check: bool = True) -> Path:
    """Merge a pack's two decoder files into `out` (the two files are left in place)."""
    decoder, decoder_with_past, out = Path(decoder), Path(decoder_with_past), Path(out)
    first = onnx.load(str(decoder))
    later = onnx.load(str(decoder_with_past))
    merged = merge_models(first, later)
    del first, later
    large = weight_bytes(merged) >= _TWO_GB
    if check and not large:
        onnx.checker.check_model(merged)
    written = save(merged, out)
    if check and large:  # over protobuf's 2 GB: the checker reads it from the file
        onnx.checker.check_model(str(out))
    log.info("merged %s + %s -> %s (%.1f MB)", decoder.name, decoder_with_past.name, out.name,
             sum(p.stat().st_size for p in written) / 1e6)
    return out


# --- packs ---------------------------------------------------------------------------------------

DECODER_FILE = "decoder_model.onnx"
DECODER_WITH_PAST_FILE = "decoder_with_past_model.onnx"
_STAMP = ".verified"


def _with_data(path: Path) -> list[Path]:
    return [path, path.with_name(f"{path.name}.data")]


def merge_pack(pack: Path, out: Path | None = None) -> Path:
    """Give a pack one merged decoder instead of the pair: in place (out None or the same folder), or
    as a copy in `out` (the source untouched). parley.json's file table follows (sizes and sha256);
    a hub pack without parley.json works too (its graphs may sit in onnx/)."""
    import json
    import shutil

    pack = Path(pack)
    onnx_dir = pack / "onnx" if not (pack / DECODER_FILE).exists() and (pack / "onnx" / DECODER_FILE).exists() else pack
    first, later = onnx_dir / DECODER_FILE, onnx_dir / DECODER_WITH_PAST_FILE
    if not (first.is_file() and later.is_file()):
        if (onnx_dir / MERGED_FILE).is_file():
            raise ValueError(f"{pack}: already has a merged decoder ({MERGED_FILE}) and no pair to merge")
        raise FileNotFoundError(f"{pack}: no {DECODER_FILE} + {DECODER_WITH_PAST_FILE} to merge")
    in_place = out is None or Path(out).resolve() == pack.resolve()
    dest = pack if in_place else Path(out)
    dest_onnx = dest / onnx_dir.relative_to(pack)
    pair = {p.relative_to(pack) for p in [*_with_data(first), *_with_data(later), *_with_data(onnx_dir / MERGED_FILE)]}
    if not in_place:
        if dest.exists() and any(dest.iterdir()):
            raise FileExistsError(f"{dest}: not empty; give an empty or new folder")
        for src in sorted(pack.rglob("*")):
            rel = src.relative_to(pack)
            if src.is_file() and rel not in pair and rel.name != _STAMP:
                (dest / rel).parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(src, dest / rel)
    dest_onnx.mkdir(parents=True, exist_ok=True)
    merged = merge_decoders(first, later, dest_onnx / MERGED_FILE)
    if in_place:
        for path in [*_with_data(first), *_with_data(later)]:
            path.unlink(missing_ok=True)
    meta_path = dest / "parley.json"
    if meta_path.exists():
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        old = meta.get("files", {})
        files: dict[str, dict] = {}
        written = [p for p in _with_data(merged) if p.is_file()]
        for name, info in old.items():
            if Path(name) in pair:
                if name == str(first.relative_to(pack)):  # the merged file takes the pair's place
                    files.update({str(p.relative_to(dest)): {"sha256": sha256_file(p), "bytes": p.stat().st_size}
                                  for p in written})
                continue
            files[name] = info
        for p in written:  # a pack whose table did not list the pair
            files.setdefault(str(p.relative_to(dest)), {"sha256": sha256_file(p), "bytes": p.stat().st_size})
        meta["files"] = files
        meta.setdefault("export", {})["merged_decoder"] = True
        meta_path.write_text(json.dumps(meta, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    stamp = dest / _STAMP
    if in_place and stamp.exists():  # forget the hashes of files that are gone
        try:
            entries = json.loads(stamp.read_text())
            stamp.write_text(json.dumps({k: v for k, v in entries.items() if Path(k) not in pair}))
        except (OSError, ValueError):
            stamp.unlink(missing_ok=True)
    log.info("pack %s: merged decoder in %s", pack, dest)
    return dest
