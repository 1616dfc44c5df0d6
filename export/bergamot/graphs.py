"""ONNX graphs of a Bergamot model (export.bergamot.model) and their parity with the torch module.

- ``encoder_model.onnx``: ``input_ids``, ``attention_mask`` [batch, src] → ``last_hidden_state`` and, per
  decoder layer, ``cross_key_values.{i}.key|value`` [batch, heads, src, head_dim]: the decoder's
  attention projections of the encoder output, computed once per sentence instead of once per step.
- ``decoder_model_merged.onnx`` (one graph for every step; the SSRU state is its recurrent state):
  ``inputs_embeds`` [rows, 1, d_model] (the previous tokens' rows of the token table, unscaled; zeros at
  the start), ``step`` [1] (the position), ``encoder_attention_mask`` [rows, src], ``output_weight``
  [k, d_model] and ``output_bias`` [k] (the output layer's rows for the batch's shortlist),
  ``past_cell.{i}`` [rows, d_model], ``cross_key_values.{i}.*`` → ``logits`` [rows, k], ``present_cell.{i}``.
- ``token_table.npy`` (int8 [vocab, d_model] with its scale in parley.json, or float32) and
  ``output_bias.npy`` [vocab]: the target token table, read by the runtime for both lookups. Gathering
  the shortlist's output rows once per batch outside the graph, instead of in every step, makes a step
  about 2.5× faster (measured: 0.66 → ~0.25 ms at one thread); the table is stored once.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn
from torch.export import Dim

from export.bergamot.model import Bergamot
from export.graph_io import export_graph

ENCODER_FILE = "encoder_model.onnx"
DECODER_FILE = "decoder_model_merged.onnx"


def cross_names(n_layers: int) -> list[str]:
    return [f"cross_key_values.{i}.{kind}" for i in range(n_layers) for kind in ("key", "value")]


class EncoderGraph(nn.Module):
    def __init__(self, model: Bergamot):
        super().__init__()
        self.model = model

    def forward(self, input_ids: Tensor, attention_mask: Tensor) -> tuple[Tensor, ...]:
        hidden, cross = self.model.encode(input_ids, attention_mask)
        return (hidden, *[t for kv in cross for t in kv])


class DecoderGraph(nn.Module):
    def __init__(self, model: Bergamot):
        super().__init__()
        self.model = model
        self.n = model.config.decoder_layers

    def forward(self, inputs_embeds: Tensor, step: Tensor, encoder_attention_mask: Tensor, output_weight: Tensor,
                output_bias: Tensor, *state: Tensor) -> tuple[Tensor, ...]:
        cells = list(state[: self.n])
        cross = [(state[self.n + 2 * i], state[self.n + 2 * i + 1]) for i in range(self.n)]
        logits, cells = self.model.decode_step(inputs_embeds, step, encoder_attention_mask, cells, cross,
                                               output_weight, output_bias)
        return (logits, *cells)


def sample_inputs(model: Bergamot, rows: int = 2, src: int = 7, k: int = 48) -> dict[str, Tensor]:
    """Inputs that exercise padding (row 1 shorter), the start vector and a shortlist."""
    c = model.config
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(3, c.src_vocab, (rows, src), generator=g)
    ids[:, -1] = 0
    mask = torch.ones(rows, src, dtype=torch.int64)
    mask[-1, src - 2:] = 0
    shortlist = torch.sort(torch.randperm(c.tgt_vocab, generator=g)[:k]).values
    prev = torch.randint(3, c.tgt_vocab, (rows, 1), generator=g)
    prev[0, 0] = c.tgt_vocab
    cells = [torch.randn(rows, c.d_model, generator=g) for _ in range(c.decoder_layers)]
    return {"input_ids": ids, "attention_mask": mask, "shortlist": shortlist, "prev": prev,
            "step": torch.tensor([3]), "cells": cells}


def export_graphs(model: Bergamot, out_dir: Path) -> list[Path]:
    """Write the two float32 graphs of `model` into `out_dir`."""
    c = model.config
    out_dir.mkdir(parents=True, exist_ok=True)
    x = sample_inputs(model)
    batch, rows = Dim("batch", min=1, max=1024), Dim("rows", min=1, max=4096)
    src, k = Dim("src_seq", min=2, max=4096), Dim("shortlist", min=2, max=c.tgt_vocab)
    enc_path, dec_path = out_dir / ENCODER_FILE, out_dir / DECODER_FILE
    export_graph(EncoderGraph(model), (x["input_ids"], x["attention_mask"]), enc_path, ["input_ids", "attention_mask"],
            ["last_hidden_state", *cross_names(c.decoder_layers)],
            {"input_ids": {0: batch, 1: src}, "attention_mask": {0: batch, 1: src}})
    with torch.no_grad():
        _, cross = model.encode(x["input_ids"], x["attention_mask"])
        out_w, out_b = model.output_rows(x["shortlist"])
    state = [*x["cells"], *[t for kv in cross for t in kv]]
    state_shapes = tuple([{0: rows}] * c.decoder_layers + [{0: rows, 2: src}] * (2 * c.decoder_layers))
    export_graph(DecoderGraph(model), (model.target_rows(x["prev"]), x["step"], x["attention_mask"], out_w, out_b, *state),
            dec_path, ["inputs_embeds", "step", "encoder_attention_mask", "output_weight", "output_bias",
                       *[f"past_cell.{i}" for i in range(c.decoder_layers)], *cross_names(c.decoder_layers)],
            ["logits", *[f"present_cell.{i}" for i in range(c.decoder_layers)]],
            ({0: rows}, None, {0: rows, 1: src}, {0: k}, {0: k}, state_shapes))
    return [enc_path, dec_path]


def graph_parity(model: Bergamot, pack_dir: Path) -> dict[str, float]:
    """Largest |difference| between each graph in `pack_dir` and the torch module on sample inputs
    (a different batch and sentence length than the export traced)."""
    import onnxruntime as ort

    c = model.config
    x = sample_inputs(model, rows=3, src=11, k=64)
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 2
    enc = ort.InferenceSession(str(pack_dir / ENCODER_FILE), opts, providers=["CPUExecutionProvider"])
    dec = ort.InferenceSession(str(pack_dir / DECODER_FILE), opts, providers=["CPUExecutionProvider"])
    with torch.no_grad():
        hidden, cross = model.encode(x["input_ids"], x["attention_mask"])
        rows, (out_w, out_b) = model.target_rows(x["prev"]), model.output_rows(x["shortlist"])
        logits, cells = model.decode_step(rows, x["step"], x["attention_mask"], x["cells"], cross, out_w, out_b)
    enc_out = enc.run(None, {"input_ids": x["input_ids"].numpy(), "attention_mask": x["attention_mask"].numpy()})
    mask = x["attention_mask"].numpy()
    valid = mask.astype(bool)
    result = {"encoder": float(np.abs(enc_out[0] - hidden.numpy())[valid].max())}
    feed = {"inputs_embeds": rows.numpy(), "step": x["step"].numpy(), "encoder_attention_mask": mask,
            "output_weight": out_w.numpy(), "output_bias": out_b.numpy()}
    feed.update({f"past_cell.{i}": t.numpy() for i, t in enumerate(x["cells"])})
    feed.update(dict(zip(cross_names(c.decoder_layers), enc_out[1:])))
    dec_out = dec.run(None, feed)
    result["decoder_logits"] = float(np.abs(dec_out[0] - logits.numpy()).max())
    result["decoder_cells"] = max(float(np.abs(a - b.numpy()).max()) for a, b in zip(dec_out[1:], cells))
    return result
