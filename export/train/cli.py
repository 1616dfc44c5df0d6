"""``python -m export train ...``: the command-line face of ``export.train.run.train``."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from export.train.options import REGULARISERS, TRAINABLE, TrainOptions

log = logging.getLogger(__name__)

# The founding document's plain sum of theta^2 is ~1.55e5 over whisper-base's 52 M decoder weights: its gradient
# dwarfs the cross-entropy's at any alpha from 0.5 to 0.99 (issue 15), so below this the CLI refuses it.
PLAIN_MIN_ALPHA = 0.99


def add_parsers(sub) -> None:
    t = sub.add_parser("train", help="fine-tune Whisper on your recordings and export a pack",
                       description="L = alpha * L_recon + (1 - alpha) * L_reg (docs/training.md).")
    t.add_argument("--base", required=True,
                   help="CTranslate2 folder, OpenAI .pt, Hugging Face folder, pack folder, or a known name (whisper-base)")
    t.add_argument("--data", required=True, type=Path,
                   help="folder of audio files with same-named .txt transcripts and/or .tsv files (path<TAB>text)")
    t.add_argument("--out", type=Path, help="pack folder to write (omit with --no-export)")
    t.add_argument("--alpha", type=float, default=0.9, help="weight of L_recon; 1 - alpha weighs L_reg (default 0.9)")
    t.add_argument("--regulariser", default="from_start", choices=REGULARISERS,
                   help="L_reg: from_start = sum ||theta - theta_0||^2 (default), plain = sum ||theta||^2, "
                        "fisher = sum F (theta - theta_0)^2 with F measured on --anchor-data")
    t.add_argument("--anchor-data", type=Path,
                   help="for --regulariser fisher: clips (as --data) of speech the model must keep recognising")
    t.add_argument("--trainable", default="all", choices=TRAINABLE,
                   help="which parameters train (decoder: the speech encoder is frozen, much faster)")
    t.add_argument("--epochs", type=int, default=3)
    t.add_argument("--max-steps", type=int, help="stop after this many steps in all")
    t.add_argument("--lr", type=float, default=1e-5)
    t.add_argument("--batch-size", type=int, default=4)
    t.add_argument("--held-out", type=float, default=0.2, help="fraction kept out to measure WER (default 0.2)")
    t.add_argument("--language", default="en", help="spoken language of the data (default en)")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--checkpoint-every", type=int, default=50, help="steps between checkpoints")
    t.add_argument("--resume", type=Path, help="checkpoint.pt of an interrupted run with the same data and options")
    t.add_argument("--device", default="cuda" if _cuda() else "cpu", choices=("cpu", "cuda"))
    t.add_argument("--precision", default="int8", choices=("int8", "fp32", "fp16"), help="of the exported pack")
    t.add_argument("--name", default="whisper-tuned", help="pack name recorded in parley.json")
    t.add_argument("--work-dir", type=Path, help="checkpoints and training.json (default: <out>.train)")
    t.add_argument("--no-export", action="store_true", help="train and evaluate only")
    t.add_argument("--no-progress", action="store_true", help="no progress bar")
    t.add_argument("--threads", type=int, default=2, help="torch threads (default 2)")
    t.add_argument("--text-encoder-epochs", type=int, default=0,
                   help="then train a text encoder into the shared space for this many epochs and add it to the pack")
    t.add_argument("--text-lr", type=float, default=1e-3, help="text encoder learning rate (default 1e-3)")
    t.add_argument("--align-weight", type=float, default=1.0, help="weight of the text/speech alignment term")
    t.add_argument("--parallel", type=Path, help="TSV of source text<TAB>English text<TAB>source language")
    add_learn_parser(sub)


def add_learn_parser(sub) -> None:
    p = sub.add_parser("learn", help="learn a glossary's words (and saved corrections) into a new pack, installed "
                                     "only if it is better on held-out voices",
                       description="A glossary (and saved corrections) spoken by espeak-ng, fine-tuned (decoder only, Fisher-weighted L_reg toward the stock model), installed only if term errors fall and general WER rises by at most 0.5 point on voices and sentences it never trained on (docs/training.md).")
    p.add_argument("--base", required=True, help="the current pack (or a checkpoint / known model name)")
    p.add_argument("--out", required=True, type=Path, help="pack folder to write when the gate passes")
    p.add_argument("--glossary", type=Path, help="glossary file (one term per line; engine/glossary.py)")
    p.add_argument("--corrections", type=Path, help="folder of saved corrections (audio + same-named .txt)")
    p.add_argument("--anchors", type=Path, help="folder of lines the model got right (the app's kept lines)")
    p.add_argument("--alpha", type=float, default=0.75, help="weight of L_recon (default 0.75)")
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--lr", type=float, default=5e-5)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--max-general-rise", type=float, default=0.5,
                   help="points of general WER the new model may add (default 0.5)")
    p.add_argument("--precision", default=None, choices=("int8", "fp32", "fp16"),
                   help="of the new pack (default: the base pack's)")
    p.add_argument("--name", default=None, help="pack name recorded in parley.json (default: the --out folder's)")
    p.add_argument("--speech-dir", type=Path, help="where the spoken sentences are kept (default: <out>.train/speech)")
    p.add_argument("--keep-refused", type=Path, default=None, metavar="DIR",
                   help="if the gate refuses the model, export it to DIR anyway to measure it (never --out; still "
                        "exit 3; for benches, the app does not use it)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--no-progress", action="store_true")


def _cuda() -> bool:
    try:
        import torch

        return torch.cuda.is_available()
    except ImportError:
        return False


def run(args: argparse.Namespace) -> int:
    from export.train.run import train

    if args.command == "learn":
        from export.train.learn import run as run_learn

        return run_learn(args)
    if args.out is None and not args.no_export:
        print("error: --out is required (or pass --no-export)", file=sys.stderr)
        return 1
    if (args.regulariser == "fisher") != (args.anchor_data is not None):
        print("error: --regulariser fisher and --anchor-data go together", file=sys.stderr)
        return 1
    if args.regulariser == "plain" and args.alpha < PLAIN_MIN_ALPHA:
        print(f"error: --regulariser plain with --alpha {args.alpha:g} destroys the model: sum theta^2 (about 1.5e5 over "
              f"whisper-base's decoder) outweighs the cross-entropy below alpha {PLAIN_MIN_ALPHA:g} and shrinks every "
              "weight toward zero; use --regulariser fisher or from_start (the pull toward the starting weights), or "
              f"--alpha {PLAIN_MIN_ALPHA:g} or more", file=sys.stderr)
        return 2
    try:
        options = TrainOptions(alpha=args.alpha, regulariser=args.regulariser, trainable=args.trainable,
                               epochs=args.epochs, max_steps=args.max_steps, lr=args.lr, batch_size=args.batch_size,
                               held_out=args.held_out, language=args.language, seed=args.seed,
                               checkpoint_every=args.checkpoint_every, device=args.device, resume=args.resume,
                               progress=not args.no_progress)
        text = None
        if args.text_encoder_epochs > 0:
            from export.train.text import TextTrainOptions

            # Fisher weights are measured for the speech path; the text encoder keeps the plain distance.
            text_reg = "from_start" if args.regulariser == "fisher" else args.regulariser
            text = TextTrainOptions(alpha=args.alpha, regulariser=text_reg, align_weight=args.align_weight,
                                    epochs=args.text_encoder_epochs, lr=args.text_lr, batch_size=args.batch_size,
                                    seed=args.seed, device=args.device)
        work_dir = args.work_dir or (args.out.parent / (args.out.name + ".train") if args.out else Path("train-work"))
        report = train(args.base, args.data, None if args.no_export else args.out, options, args.precision,
                       args.name, work_dir, text=text, parallel=args.parallel,
                       anchors=args.anchor_data)
    except KeyboardInterrupt:
        print("error: interrupted; continue with --resume <work dir>/checkpoint.pt", file=sys.stderr)
        return 130
    except Exception as e:  # the last line is the reason, as for `python -m export whisper`
        log.error("training failed", exc_info=True)
        print(f"error: {type(e).__name__}: {e}", file=sys.stderr)
        return 1
    print(report.summary(), file=sys.stderr)
    print(report.pack if report.pack is not None else work_dir)
    return 0
