"""One fine-tuning run end to end: base model, data, training, held-out WER, pack, report."""

from __future__ import annotations

import dataclasses
import json
import logging
from pathlib import Path
from typing import TextIO

import torch

from export.train.base import export_trained, load_base
from export.train.data import DataProblem, TargetTokenizer, load_examples, split
from export.train.loop import TrainResult, fine_tune
from export.train.options import TrainOptions
from export.train.text import SharedSpaceReport, TextTrainOptions

log = logging.getLogger(__name__)

REPORT = "training.json"


@dataclasses.dataclass(frozen=True)
class TrainReport:
    pack: Path | None  # the exported pack (None when export was skipped)
    result: TrainResult
    problems: tuple[DataProblem, ...]  # files that were reported and skipped
    n_train: int
    n_held_out: int
    work_dir: Path
    shared: SharedSpaceReport | None = None  # the text encoder measured on the held-out clips
    text_steps: int = 0  # text encoder training steps (0: none trained)

    def summary(self) -> str:
        r = self.result
        lines = [f"skipped {p}" for p in self.problems]
        lines.append(f"{self.n_train} training and {self.n_held_out} held-out clips; {r.steps} steps in "
                     f"{r.seconds:.0f} s; peak memory {r.peak_memory_mb:.0f} MB")
        if r.history:
            lines.append(f"loss {r.history[0].loss:.4f} at step 1 -> {r.history[-1].loss:.4f} at step {r.steps}")
        if r.before is not None and r.after is not None:
            lines.append(f"held-out WER {100 * r.before.wer:.1f}% -> {100 * r.after.wer:.1f}% ({r.after.words} words)")
        if self.text_steps:
            lines.append(f"text encoder: {self.text_steps} steps")
        if self.shared is not None:
            lines.append(self.shared.summary())
        if self.pack is not None:
            lines.append(f"pack: {self.pack}")
        return "\n".join(lines)


def _write_report(report: TrainReport, options: TrainOptions) -> None:
    r = report.result

    def ev(e):
        return None if e is None else {"wer": e.wer, "words": e.words,
                                       "hypotheses": [dict(zip(("file", "reference", "hypothesis"), h))
                                                      for h in e.hypotheses]}

    data = {
        "options": {k: (str(v) if isinstance(v, Path) else v) for k, v in dataclasses.asdict(options).items()},
        "pack": None if report.pack is None else str(report.pack), "steps": r.steps, "seconds": r.seconds,
        "peak_memory_mb": r.peak_memory_mb, "n_train": report.n_train, "n_held_out": report.n_held_out,
        "problems": [{"file": str(p.path), "reason": p.reason} for p in report.problems],
        "before": ev(r.before), "after": ev(r.after),
        "history": [dataclasses.asdict(h) for h in r.history],
        "shared_space": None if report.shared is None else dataclasses.asdict(report.shared),
    }
    (report.work_dir / REPORT).write_text(json.dumps(data, indent=1, ensure_ascii=False) + "\n")


def train(base: str | Path, data: Path, out: Path | None, options: TrainOptions = TrainOptions(),
          precision: str = "int8", name: str = "whisper-tuned", work_dir: Path | None = None,
          stream: TextIO | None = None, text: TextTrainOptions | None = None,
          parallel: Path | None = None, anchors: Path | None = None) -> TrainReport:
    """Fine-tune `base` on the clips in `data` and export the result to the pack folder `out` (None: no
    export). Checkpoints and ``training.json`` go to `work_dir` (default: ``<out>.train`` beside the pack).

    With `text`, a text encoder is then trained into the shared space on the same clips' transcripts (and
    the `parallel` TSV of source<TAB>English<TAB>language, if given), measured on the held-out clips and
    exported into the pack as text_encoder_model.onnx. `anchors`: a folder of clips (as `data`) the model must
    keep recognising, for the ``fisher`` regulariser."""
    if out is None and work_dir is None:
        raise ValueError("give an output pack folder or a work folder for the checkpoints")
    work_dir = Path(work_dir) if work_dir is not None else Path(out).parent / (Path(out).name + ".train")
    model, vocab, source = load_base(base)
    tok = TargetTokenizer(vocab)
    examples, problems = load_examples(Path(data), model.dims.n_mels, tok, options.language,
                                       max_tokens=model.dims.n_text_ctx // 2 - 4)
    if not examples:
        raise ValueError(f"{data}: no usable clip (audio with a non-empty same-named .txt, or a .tsv line); "
                         f"{len(problems)} problem(s) reported above")
    train_set, held = split(examples, options.held_out, options.seed)
    log.info("%d usable clips (%d train, %d held out), %d skipped; base %s", len(examples), len(train_set),
             len(held), len(problems), source)
    anchor_set = None
    if anchors is not None:
        anchor_set, anchor_problems = load_examples(Path(anchors), model.dims.n_mels, tok, options.language,
                                                    max_tokens=model.dims.n_text_ctx // 2 - 4)
        problems = problems + anchor_problems
        if not anchor_set:
            raise ValueError(f"{anchors}: no usable anchor clip (audio with a non-empty same-named .txt, or a .tsv line)")
    torch.manual_seed(options.seed)
    result = fine_tune(model, tok, train_set, held, options, work_dir, stream, anchors=anchor_set)
    encoder, shared, text_steps = None, None, 0
    if text is not None:
        encoder, shared, text_steps = _train_text(model, tok, train_set, held, text, parallel, stream)
    pack = None
    if out is not None:
        pack = export_trained(model, vocab, work_dir, Path(out), precision, name)
        if encoder is not None:
            from export.text_encoder import add_to_pack

            add_to_pack(encoder, pack, {"clips": len(train_set), "steps": text_steps,
                                        "parallel": None if parallel is None else str(parallel)})
    report = TrainReport(pack, result, tuple(problems), len(train_set), len(held), work_dir, shared, text_steps)
    _write_report(report, options)
    return report


@torch.no_grad()
def _speech_vectors(model, examples, device: str) -> torch.Tensor:
    from export.train.text import speech_vectors

    model.eval()
    return torch.cat([speech_vectors(model.encoder(torch.from_numpy(ex.mel)[None].to(device)), [ex])
                      for ex in examples]) if examples else torch.zeros(0, model.dims.n_audio_state)


def _train_text(model, tok, train_set, held, options: TextTrainOptions, parallel: Path | None,
                stream: TextIO | None):
    from export.text_encoder import new_text_encoder
    from export.train.text import (measure_shared_space, pairs_from_examples, read_parallel, speech_centre,
                                   train_text_encoder)

    pairs = pairs_from_examples(train_set) + (read_parallel(parallel, tok) if parallel else [])
    encoder = new_text_encoder(model, seed=options.seed)
    speech = _speech_vectors(model, train_set, options.device)
    history = train_text_encoder(model, encoder, tok, pairs, speech, options, stream)
    shared = None
    if len(held) >= 2:
        centre = speech_centre(speech, options)
        centre = centre.cpu() if centre is not None else None
        shared = measure_shared_space(model, encoder.cpu(), tok, held, _speech_vectors(model.cpu(), held, "cpu"),
                                      centre=centre)
        log.info("%s", shared.summary())
    return encoder.cpu(), shared, len(history)
