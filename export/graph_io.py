"""What every exported graph shares (Whisper's, the Marian/NLLB/M2M100 text packs', Bergamot's): the opset, the
Optimum names of the K/V inputs and outputs, the flat past list split into self- and cross-attention pairs and
the present pairs flattened again, the dynamo export, and the one-file save."""

from __future__ import annotations

import logging
from pathlib import Path

import onnx
import torch
from torch import Tensor, nn

log = logging.getLogger(__name__)

OPSET = 18
_TWO_GB = 2**31 - 1


def kv_names(prefix: str, n_layer: int, with_encoder: bool = True) -> list[str]:
    """``prefix.{i}.decoder.key/value`` per layer, and ``prefix.{i}.encoder.key/value`` after each with_encoder."""
    names = []
    for i in range(n_layer):
        names += [f"{prefix}.{i}.decoder.key", f"{prefix}.{i}.decoder.value"]
        if with_encoder:
            names += [f"{prefix}.{i}.encoder.key", f"{prefix}.{i}.encoder.value"]
    return names


def split_past(past_key_values: tuple[Tensor, ...], n_layer: int
               ) -> tuple[list[tuple[Tensor, Tensor]], list[tuple[Tensor, Tensor]]]:
    """The flat inputs in kv_names order (4 per layer) as (self K, V) and (cross K, V) pairs per layer."""
    assert len(past_key_values) == 4 * n_layer, f"{len(past_key_values)} past tensors for {n_layer} layers"
    past = [(past_key_values[4 * i], past_key_values[4 * i + 1]) for i in range(n_layer)]
    cross = [(past_key_values[4 * i + 2], past_key_values[4 * i + 3]) for i in range(n_layer)]
    return past, cross


def logits_and_present(logits: Tensor, present: list[tuple[Tensor, Tensor]]) -> tuple[Tensor, ...]:
    """A decoder-with-past graph's outputs: the logits, then each layer's grown self K and V."""
    return (logits, *(t for kv in present for t in kv))


def save(program: torch.onnx.ONNXProgram, path: Path) -> None:
    """One self-contained .onnx per graph below 2 GB; external data (path + '.data') only above."""
    size = sum(t.numel() * t.element_size() for t in program.exported_program.state_dict.values())
    size += sum(t.numel() * t.element_size() for t in program.exported_program.constants.values()
                if isinstance(t, Tensor))
    program.save(str(path), external_data=size >= _TWO_GB)
    if size < _TWO_GB:
        proto = onnx.load(str(path), load_external_data=False)
        external = [t.name for t in proto.graph.initializer if t.data_location == onnx.TensorProto.EXTERNAL]
        assert not external, f"{path}: {len(external)} initializers were written as external data"
    log.info("wrote %s (%.1f MB)", path.name, path.stat().st_size / 1e6)


def export_graph(module: nn.Module, args: tuple, path: Path, input_names: list[str], output_names: list[str],
                 dynamic_shapes) -> None:
    """``module`` traced by the dynamo exporter (sequence lengths stay dynamic) and saved at ``path``."""
    log.info("exporting %s", path.name)
    with torch.no_grad():
        program = torch.onnx.export(module.eval(), args, dynamo=True, dynamic_shapes=dynamic_shapes,
                                    input_names=input_names, output_names=output_names, opset_version=OPSET,
                                    optimize=True, verbose=False)
    assert program is not None
    save(program, path)
