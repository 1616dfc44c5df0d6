"""Learn these words: a glossary (and the user's saved corrections) → speech → a fine-tune → installed only if
it is better on what it never trained on.

    python -m export learn --base PACK --out NEW_PACK --glossary words.txt [--corrections DIR] [--anchors DIR]

1. The glossary's training and validation sentences, and general English in two halves, are written and spoken by
   espeak-ng (engine.learn_words: training voices and validation voices are disjoint).
2. The model trains from the current pack's weights with the measured recipe: decoder only, 5 epochs, lr 5e-5,
   L = α·L_recon + (1−α)·Σ F·(θ − θ₀)², α = 0.75, the Fisher weights F measured on the general half spoken by the
   training voices (and the user's kept lines). θ₀ and F are always those of the **stock** model the pack line
   started from (``stock.json`` beside each trained.pt names it), so repeated improvements do not drift.
3. The gate: on the validation set, the term error rate (or, with corrections only, the held-out corrections'
   WER) must fall and the general WER (the other half, validation voices) may rise by at most 0.5 point, both
   against the current model. Otherwise nothing is written and one line says why.
4. Corrections are split (a fifth held out) to measure; once the gate passes, training runs again on all of
   them (the split folded back in) and that model is exported. Its parley.json lists the glossary's terms it
   learned (``learned_terms``, with those the base pack had learned): decoding with it no longer prompts or
   biases them (engine.glossary.for_pack).

``--keep-refused DIR`` (benches only; the app never passes it): a model the gate refuses is still exported, to
DIR, so it can be measured — never to ``--out``, and the command still exits 3.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import logging
import shutil
import sys
import time
from pathlib import Path
from typing import TextIO

import torch

from engine import learn_words as lw
from engine.glossary import Glossary, format_glossary
from engine.packs.whisper_pack import WhisperPack
from export.train.base import TRAINED_CHECKPOINT, export_trained, load_base, resolve_base
from export.train.data import Example, TargetTokenizer, collate, load_examples, split
from export.train.evaluate import greedy
from export.train.loop import fine_tune
from export.train.options import TrainOptions
from export.whisper_model import Whisper

log = logging.getLogger(__name__)

STOCK = "stock.json"  # beside trained.pt: the stock checkpoint whose weights are theta_0
REPORT = "learn.json"
REFUSED = 3  # exit status of a run whose model the gate refused


@dataclasses.dataclass(frozen=True)
class LearnOptions:
    alpha: float = 0.75  # measured (docs/training.md): terms learned, general English kept, with Fisher
    epochs: int = 5
    lr: float = 5e-5
    batch_size: int = 8
    per_term: int = 6  # training carrier sentences per term
    validation_per_term: int = 2
    held_out: float = 0.2  # of the corrections, to measure (then folded back in)
    max_general_rise: float = lw.MAX_GENERAL_RISE
    seed: int = 0
    device: str = "cpu"
    progress: bool = True
    train_voices: tuple[str, ...] = lw.TRAIN_VOICES
    validation_voices: tuple[str, ...] = lw.VALIDATION_VOICES

    def train_options(self, held_out: float = 0.0) -> TrainOptions:
        return TrainOptions(alpha=self.alpha, regulariser="fisher" if self.alpha < 1 else "from_start",
                            trainable="decoder", epochs=self.epochs, lr=self.lr, batch_size=self.batch_size,
                            held_out=held_out, seed=self.seed, device=self.device, progress=self.progress,
                            checkpoint_every=10_000)


@dataclasses.dataclass(frozen=True)
class LearnReport:
    installed: bool
    reason: str  # the gate's one line
    pack: Path | None
    stock: Path  # theta_0 and the Fisher weights came from here
    current: lw.Scores
    candidate: lw.Scores
    n_train: int
    n_validation: int
    seconds: float
    refused_pack: Path | None = None  # where keep_refused exported a model the gate refused (never installed)


def stock_source(base: str | Path) -> Path:
    """The stock checkpoint behind ``base``: a pack written by learning or training names the trained.pt it was
    built from, and a trained.pt written by learning has a ``stock.json`` naming the stock checkpoint its line
    started from. Anything else is stock itself."""
    source = resolve_base(base)
    record = source.parent / STOCK if source.name == TRAINED_CHECKPOINT else None
    if record is not None and record.is_file():
        stock = Path(json.loads(record.read_text(encoding="utf-8"))["stock"])
        if stock.exists():
            return stock
        log.warning("%s names the stock model %s, which is gone; theta_0 is %s", record, stock, source)
    return source


def learned_terms(base: str | Path) -> tuple[str, ...]:
    """The glossary terms the pack ``base`` was taught (its parley.json's ``learned_terms``); () for anything
    else (a stock pack, a checkpoint, a model name)."""
    path = Path(base).expanduser()
    return WhisperPack.load(path).learned_terms if (path / "parley.json").is_file() else ()


def install(model: Whisper, vocab, work_dir: Path, out: Path, precision: str, name: str, stock: Path,
            terms: tuple[str, ...] = ()) -> Path:
    """Export the learned model as a pack at ``out`` (trained.pt in ``work_dir``), and record beside trained.pt the
    stock checkpoint its line started from: the next improvement of this pack pulls toward that one. ``terms``:
    the glossary terms the model has learned, listed in the pack's parley.json (``learned_terms``)."""
    pack = export_trained(model, vocab, work_dir, Path(out), precision, name)
    (Path(work_dir) / STOCK).write_text(json.dumps({"stock": str(stock)}) + "\n", encoding="utf-8")
    (Path(work_dir) / "checkpoint.pt").unlink(missing_ok=True)
    if terms:  # parley.json is not among the checksummed files: adding a key keeps the pack verified
        meta_path = Path(pack) / "parley.json"
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        meta["learned_terms"] = list(dict.fromkeys(terms))
        meta_path.write_text(json.dumps(meta, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return pack


def _say(stream: TextIO | None, line: str) -> None:
    print(line, file=stream or sys.stderr, flush=True)


@torch.no_grad()
def _states(model: Whisper, examples: list[Example], tok: TargetTokenizer, device: str) -> torch.Tensor:
    model.eval()
    if not examples:
        return torch.zeros(0, model.dims.n_audio_ctx, model.dims.n_audio_state)
    return torch.cat([model.encoder(torch.from_numpy(collate(examples[i:i + 8], tok)[0]).to(device)).cpu()
                      for i in range(0, len(examples), 8)])


@torch.no_grad()
def _transcribe(model: Whisper, examples: list[Example], states: torch.Tensor, tok: TargetTokenizer,
                device: str) -> list[tuple[str, str]]:
    model.eval()
    return [(ex.text, tok.decode(greedy(model, None, tok.prompt(ex.language), tok.eot, 2 * len(ex.tokens) + 10,
                                        audio_states=states[i:i + 1].to(device))))
            for i, ex in enumerate(examples)]


def _scores(model, tok, device, terms, validation, v_states, held, h_states, general, g_states) -> tuple[lw.Scores, dict]:
    rows_v = _transcribe(model, validation, v_states, tok, device)
    rows_h = _transcribe(model, held, h_states, tok, device)
    rows_g = _transcribe(model, general, g_states, tok, device)
    if terms:
        target, name = lw.term_error_rate(rows_v, terms)[0], "term errors"
    else:
        target, name = lw.corpus_wer(rows_h)[0], "WER on held-out corrections"
    scores = lw.Scores(target, name, lw.corpus_wer(rows_g)[0])
    return scores, {"validation": rows_v, "held_out_corrections": rows_h, "general": rows_g,
                    "held_out_corrections_wer": lw.corpus_wer(rows_h)[0] if rows_h else None}


def learn(base: str | Path, out: Path, glossary: Glossary | None = None, corrections: Path | None = None,
          anchors: Path | None = None, options: LearnOptions = LearnOptions(), precision: str = "int8",
          name: str = "whisper-learned", work_dir: Path | None = None, speech_dir: Path | None = None,
          stream: TextIO | None = None, keep_refused: Path | None = None) -> LearnReport:
    """Learn ``glossary``'s terms (and the clips in ``corrections``) into a new pack at ``out`` — written only if
    the gate passes. ``anchors``: clips the model got right (the app's kept lines), split between the Fisher
    anchors and the gate's general set. ``speech_dir``: where the spoken sentences are kept (reused).
    ``keep_refused``: a folder (not ``out``) where a model the gate refuses is exported anyway, to be measured
    (learn.json's ``refused_pack``); the report still says not installed."""
    started = time.perf_counter()
    glossary = glossary or Glossary()
    if not glossary and corrections is None:
        raise ValueError("nothing to learn: give a glossary with terms and/or a folder of corrections")
    out = Path(out)
    if keep_refused is not None and Path(keep_refused).resolve() == out.resolve():
        raise ValueError(f"--keep-refused {keep_refused}: the folder a refused model is kept in cannot be --out")
    work_dir = Path(work_dir) if work_dir is not None else out.parent / (out.name + ".train")
    speech_dir = Path(speech_dir) if speech_dir is not None else work_dir / "speech"
    model, vocab, source = load_base(base)
    stock_path = stock_source(base)
    stock = model if stock_path == source else load_base(stock_path)[0]
    _say(stream, f"θ₀ and the Fisher weights: the stock model {stock_path}"
         + ("" if stock is model else f" (training continues from {source})"))
    tok = TargetTokenizer(vocab)
    max_tokens = model.dims.n_text_ctx // 2 - 4

    if glossary:
        corpus = lw.write_sentences(glossary, options.per_term, options.validation_per_term, options.train_voices,
                                    options.validation_voices)
    else:
        corpus = lw.Corpus((), (), *lw.general_sentences(options.train_voices, options.validation_voices))
    _say(stream, f"speaking {len(corpus.train)} training sentences, {len(corpus.validation)} validation sentences "
                 f"and {len(corpus.fisher) + len(corpus.gate)} general ones (espeak-ng, "
                 f"{len(options.train_voices)} training and {len(options.validation_voices)} validation voices)")

    def load(utterances, folder: str) -> list[Example]:
        if not utterances:  # corrections alone: no sentences to speak (and no folder to read)
            return []
        target = speech_dir / folder
        keep = {u.key for u in utterances}
        if target.exists():  # only this corpus' clips: those of an earlier glossary are removed, the rest reused
            for f in target.iterdir():
                if f.stem not in keep:  # (a half-written .tmp.wav too)
                    f.unlink()
        lw.speak_all(utterances, target)
        found, problems = load_examples(target, model.dims.n_mels, tok, "en", max_tokens)
        if problems:
            raise ValueError(f"{len(problems)} spoken clip(s) could not be used: {problems[0]}")
        return found

    train = load(corpus.train, "train")
    validation = load(corpus.validation, "validation")
    fisher_set = load(corpus.fisher, "fisher")
    general = load(corpus.gate, "gate")
    corr_train: list[Example] = []
    held: list[Example] = []
    all_corrections: list[Example] = []
    if corrections is not None:
        all_corrections, problems = load_examples(Path(corrections), model.dims.n_mels, tok, "en", max_tokens)
        for p in problems:
            _say(stream, f"skipped {p}")
        if not all_corrections and not glossary:
            raise ValueError(f"{corrections}: no usable clip (audio with a non-empty same-named .txt)")
        corr_train, held = split(all_corrections, options.held_out, options.seed)
        if not held and not glossary:  # nothing would decide the gate: refuse before a whole training run
            raise ValueError(f"{corrections}: {len(all_corrections)} usable correction(s); at least 2 are needed "
                             "(one is held out to check the result)")
    if anchors is not None and Path(anchors).is_dir():
        kept, _ = load_examples(Path(anchors), model.dims.n_mels, tok, "en", max_tokens)
        fisher_set += kept[0::2]  # the user's own lines: half rest the pull, half are measured
        general += kept[1::2]

    device = options.device
    _say(stream, "encoding the clips (the speech encoder is frozen: once each)")
    same_encoder = stock is model or all(torch.equal(a, b) for a, b in zip(stock.encoder.state_dict().values(),
                                                                         model.encoder.state_dict().values()))
    v_states = _states(model, validation, tok, device)
    h_states = _states(model, held, tok, device)
    g_states = _states(model, general, tok, device)
    f_states = _states(model if same_encoder else stock, fisher_set, tok, device)

    terms = glossary.words
    _say(stream, "measuring the current model on the validation set")
    current, current_rows = _scores(model, tok, device, terms, validation, v_states, held, h_states, general, g_states)

    def run(train_set: list[Example]) -> None:
        torch.manual_seed(options.seed)
        fine_tune(model, tok, train_set, [], options.train_options(), work_dir, stream, anchors=fisher_set,
                  anchor_states=f_states, reference=None if stock is model else stock)

    first = train + corr_train
    if not first:
        raise ValueError("no training clips left after holding out the validation corrections; save more")
    if stock is model:  # theta_0 must stay the stock weights while `model` trains in place
        stock = copy.deepcopy(model)
    run(first)
    _say(stream, "measuring the learned model on the validation set")
    candidate, candidate_rows = _scores(model, tok, device, terms, validation, v_states, held, h_states, general,
                                        g_states)
    ok, reason = lw.gate(current, candidate, options.max_general_rise)
    _say(stream, reason)
    pack = refused = None
    if keep_refused is not None:  # a refused model of an earlier run must not pass for this run's
        for stale in (Path(keep_refused), Path(keep_refused).parent / (Path(keep_refused).name + ".train")):
            shutil.rmtree(stale, ignore_errors=True)
    terms_now = learned_terms(base) + tuple(terms)  # what the model knows: the base pack's terms and these
    if ok:
        if held:  # the held-out corrections are learned too: the same training on all of them
            _say(stream, f"training again with the {len(held)} held-out correction(s) folded back in")
            model = load_base(base)[0]
            run(train + all_corrections)
        pack = install(model, vocab, work_dir, out, precision, name, stock_path, terms_now)
    elif keep_refused is not None:  # to be measured, never installed: its own folder, not --out
        keep_refused = Path(keep_refused)
        refused = install(model, vocab, keep_refused.parent / (keep_refused.name + ".train"), keep_refused,
                          precision, name, stock_path, terms_now)
        _say(stream, f"the refused model is kept for measuring (not installed): {refused}")
    report = LearnReport(ok, reason, pack, stock_path, current, candidate, len(first), len(validation),
                         time.perf_counter() - started, refused)
    work_dir.mkdir(parents=True, exist_ok=True)
    (work_dir / REPORT).write_text(json.dumps({
        "installed": ok, "reason": reason, "pack": None if pack is None else str(pack), "stock": str(stock_path),
        "refused_pack": None if refused is None else str(refused), "base": str(base), "glossary": list(terms),
        "glossary_text": format_glossary(glossary).splitlines(), "learned_terms": list(dict.fromkeys(terms_now)),
        "options": {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(options).items()},
        "current": dataclasses.asdict(current), "candidate": dataclasses.asdict(candidate),
        "n_train": len(first), "n_validation": len(validation), "n_general": len(general),
        "seconds": round(report.seconds, 1), "rows": {"current": current_rows, "candidate": candidate_rows},
    }, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    if not ok:
        shutil.rmtree(out, ignore_errors=True)
        (work_dir / "checkpoint.pt").unlink(missing_ok=True)
    return report


def run(args) -> int:
    from engine.corrections import pack_precision
    from engine.glossary import GlossaryError, load_glossary

    try:
        glossary = load_glossary(args.glossary) if args.glossary is not None else None
        if args.glossary is not None and not glossary:
            raise GlossaryError(f"{args.glossary}: the glossary has no terms; write one term per line")
        options = LearnOptions(alpha=args.alpha, epochs=args.epochs, lr=args.lr, batch_size=args.batch_size,
                               max_general_rise=args.max_general_rise, progress=not args.no_progress)
        options.train_options()  # bad numbers are refused before any model loads
        precision = args.precision or (pack_precision(Path(args.base)) if Path(args.base).is_dir() else "int8")
        name = args.name or args.out.name.removesuffix(f"-{precision}")
        report = learn(args.base, args.out, glossary, args.corrections, args.anchors, options, precision, name,
                       speech_dir=args.speech_dir,
                       keep_refused=getattr(args, "keep_refused", None))
    except KeyboardInterrupt:
        print("error: interrupted; nothing was installed", file=sys.stderr)
        return 130
    except Exception as e:  # the last line is the reason, as for `python -m export train`
        log.error("learning failed", exc_info=True)
        print(f"error: {type(e).__name__}: {e}", file=sys.stderr)
        return 1
    if not report.installed:
        return REFUSED
    print(report.pack)
    return 0
