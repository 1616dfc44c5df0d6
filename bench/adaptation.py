"""Does fine-tuning teach whisper-base new words, and what does the regulariser keep? One honest run.

    .venv/bin/python bench/adaptation.py                        # whisper-base's CTranslate2 source (setup.sh), CPU, 1 thread
    .venv/bin/python bench/adaptation.py --alphas 1.0 0.9 0.5 --epochs 5 --lr 5e-5

(Over 400 lines: the corpus, the fine-tuning sweep and its report are one experiment, used nowhere else.)

Ten invented names and terms that stock whisper-base cannot know; 60 training sentences and 20 held-out
sentences (new sentence frames, same terms) that use them; 20 general English sentences from
bench/clips.py. All spoken by espeak-ng. The base is fine-tuned once per alpha, starting from the same
weights each time, and scored before and after on
- the held-out term sentences: the error rate on the new terms (share of term occurrences not written
  exactly: WER counted on the terms) and the WER of the whole sentences (which also counts the words around
  the terms that stock whisper-base mishears in espeak-ng speech anyway, e.g. "The article explained how"
  → "There are the collect planes,": errors a term fine-tune does not address);
- the general sentences: WER (does the model still know English?).
Training time and peak memory are measured per run. Results print as a table and go to
docs/results/adaptation.{json,md} (``--out``).

Then the shared space (``--shared-epochs``, 0 to skip): a text encoder is trained on the 60 training
sentences toward the stock speech encoder's sentence vectors (decoder frozen), and measured on the 20
held-out sentences: cosine of text vs. speech vectors of the same and of other sentences, retrieval
(does a sentence's text find its own speech among the 20?) and what the decoder writes from the text
encoder's states (reconstruction WER).

Reduced configuration, to fit a 2-core CPU: only the decoder trains (``trainable="decoder"``), so the
speech encoder's outputs are computed once per clip and shared by every run; decoding is greedy in torch
on the same encoder outputs (the test suite checks that an exported pack decodes like torch).
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import hashlib
import logging
import resource
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from bench import clips as clipkit  # noqa: E402
from bench import record  # noqa: E402
from engine.packs.paths import sources_root  # noqa: E402
from export.train.base import load_base  # noqa: E402
from export.train.data import Example, TargetTokenizer, load_examples  # noqa: E402
from export.train.evaluate import greedy  # noqa: E402
from export.train.loop import fine_tune  # noqa: E402
from export.train.options import TrainOptions  # noqa: E402
from export.text_encoder import new_text_encoder  # noqa: E402
from export.train.text import (TextPair, TextTrainOptions, measure_shared_space, pairs_from_examples,  # noqa: E402
                               speech_vectors, text_states, train_text_encoder)

log = logging.getLogger("bench.adaptation")

TERMS = ("Zorvanic", "Quillbrook", "Draxelon", "Mirovita", "Tessaline", "Brennivox", "Pellastro", "Ondrakis",
         "Velquist", "Trymbalo")
TRAIN_FRAMES = (
    "{a} will present the quarterly results to the board on Monday.",
    "We ordered three new {b} units for the laboratory.",
    "The {a} project was delayed because of the storm.",
    "Please send the {b} report to Maria before lunch.",
    "Our team compared {a} with {b} last week.",
    "The engineers said the {a} sensor works well in the cold.",
    "I met the {b} representatives at the conference in Lisbon.",
    "The new version of {a} is faster than the old one.",
    "She asked whether {b} supports the older printers.",
    "The budget for {a} and {b} was approved yesterday.",
    "Nobody in the office had heard of {a} before today.",
    "He installed {b} on every computer in the building.",
)
# Anchor clips for the fisher regulariser: general English the model must keep recognising. None of them is
# in the general test set (bench/clips.py's first 20 English sentences) or uses a term.
ANCHOR_SENTENCES = (
    "The children walked to school along the river this morning.",
    "My neighbour grows tomatoes and beans in her garden.",
    "The train to the airport leaves every twenty minutes.",
    "Please turn off the lights when you leave the room.",
    "The museum opens at ten o'clock on Saturdays.",
    "We had soup and fresh bread for dinner last night.",
    "The road was wet after the heavy rain in the afternoon.",
    "He forgot his umbrella on the bus again.",
    "The teacher asked the students to read the first chapter.",
    "Our flight was delayed by almost two hours.",
    "She plays the piano every evening after work.",
    "The doctor told him to drink more water and rest.",
    "There is a small bakery on the corner of our street.",
    "The meeting has been moved to Thursday afternoon.",
    "They painted the kitchen a light shade of blue.",
    "The library will be closed during the holidays.",
    "I usually take the stairs instead of the lift.",
    "The farmers are worried about the dry summer.",
    "Could you tell me where the nearest post office is?",
    "The film was longer than we expected, but it was good.",
)
HELD_OUT_FRAMES = (
    "Tomorrow the {a} team will visit the factory in the north.",
    "The price of {b} went up again this spring.",
    "My brother works for {a} and likes it very much.",
    "Can you check if {b} is still running on the server?",
    "The article explained how {a} and {b} were designed.",
)


def term_sentences(frames: tuple[str, ...], n: int, shift: int, offset: bool = False) -> list[str]:
    """n sentences: frame j % len(frames) with terms picked by j (offset: shift the pairing every ten
    sentences, so that few frames still make n different sentences)."""
    out = []
    for j in range(n):
        k = j // len(TERMS) if offset else 0
        a = TERMS[(j + k) % len(TERMS)]
        b = TERMS[(j * 3 + shift + k) % len(TERMS)]
        if b == a:
            b = TERMS[(j + 5) % len(TERMS)]
        out.append(frames[j % len(frames)].format(a=a, b=b))
    return out


def write_folder(folder: Path, texts: list[str], cache: Path, prefix: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for i, text in enumerate(texts):
        wav = clipkit.synthesize(clipkit.Clip(f"{prefix}{i:02d}", "en", text, text), cache)
        (folder / f"{prefix}{i:02d}.wav").write_bytes(wav.read_bytes())
        (folder / f"{prefix}{i:02d}.txt").write_text(text + "\n")
    return folder


@torch.no_grad()
def encode_all(model, examples: list[Example]) -> torch.Tensor:
    return torch.cat([model.encoder(torch.from_numpy(ex.mel)[None]) for ex in examples])


@torch.no_grad()
def cached_states(cache: Path | None, source: Path, model, sets: dict) -> dict:
    """encode_all for every set, through a cache file named by what determines the result."""
    if cache is None:
        return {name: encode_all(model, ex) for name, ex in sets.items()}
    digest = hashlib.sha256(str(Path(source).resolve()).encode())
    for name, examples in sorted(sets.items()):
        digest.update(name.encode())
        for ex in examples:
            digest.update(ex.text.encode() + b"\0" + hashlib.sha256(ex.mel.tobytes()).digest())
    path = Path(cache) / f"states-{digest.hexdigest()[:16]}.pt"
    if path.is_file():
        log.info("encoder outputs from %s", path)
        return torch.load(path)
    states = {name: encode_all(model, ex) for name, ex in sets.items()}
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(states, path)
    return states


def tally(pairs: list[tuple[str, str]]) -> dict:
    """WER over (reference, hypothesis) pairs, and the WER on the new terms: the share of term occurrences
    not written exactly (substituted or dropped)."""
    edits, words, hits, terms = 0.0, 0, 0, 0
    for ref, hyp in pairs:
        n = len(clipkit.normalize_text(ref).split())
        edits += clipkit.wer(ref, hyp) * n
        words += n
        said = set(clipkit.normalize_text(hyp).split())
        for term in TERMS:
            if term in ref:
                terms += 1
                hits += term.lower() in said
    return {"wer": edits / max(words, 1), "words": words, "term_recall": hits / terms if terms else None,
            "term_error": 1 - hits / terms if terms else None, "terms": terms, "examples": list(pairs)}


@torch.no_grad()
def score(model, tok: TargetTokenizer, examples: list[Example], states: torch.Tensor) -> dict:
    model.eval()
    return tally([(ex.text, tok.decode(greedy(model, None, tok.prompt("en"), tok.eot, 2 * len(ex.tokens) + 10,
                                              xa[None])))
                  for ex, xa in zip(examples, states)])


def run_shared(base, tok: TargetTokenizer, sets: dict, states: dict, args) -> dict:
    speech = {k: speech_vectors(states[k], sets[k]) for k in ("train", "held")}
    centre = speech["train"].mean(0)  # the training sentences' mean speech vector

    def measure(encoder, key, limit=None):
        ex, sp = sets[key][:limit], speech[key][:limit]
        return {"raw": dataclasses.asdict(measure_shared_space(base, encoder, tok, ex, sp)),
                "centred": dataclasses.asdict(measure_shared_space(base, encoder, tok, ex, sp, centre=centre))}

    parallel_train, parallel_held = parallel_sentences()
    encoder = new_text_encoder(base, seed=0)
    before = measure(encoder, "held")
    translations_before = translate_via_text(base, encoder, tok, parallel_held)
    pairs = pairs_from_examples(sets["train"]) + [
        TextPair(tuple(tok.encode(c.text)), c.language, tuple(tok.encode(c.reference_en)), "translate", None)
        for c in parallel_train]
    t0 = time.perf_counter()
    history = train_text_encoder(base, encoder, tok, pairs, speech["train"],
                                 TextTrainOptions(alpha=1.0, epochs=args.shared_epochs, lr=args.text_lr,
                                                  batch_size=args.batch_size, centre=not args.no_centre))
    train_s = time.perf_counter() - t0
    after = measure(encoder, "held")
    train_fit = measure(encoder, "train", 20)
    for p in base.parameters():
        p.requires_grad_(True)
    return {"epochs": args.shared_epochs, "steps": len(history), "train_s": train_s, "centred_training": not args.no_centre,
            "final": history[-1], "before": before, "after": after, "train_sentences": train_fit,
            "parallel_pairs": len(parallel_train),
            "translations": {"before": translations_before,
                             "held_out": translate_via_text(base, encoder, tok, parallel_held),
                             "trained_on": translate_via_text(base, encoder, tok, parallel_train[::4])}}


def parallel_sentences() -> tuple[list, list]:
    """German, French and Spanish sentences of bench/clips.py with their English: 8 of each language train the
    text encoder (translate task, text only), the other 2 of each are held out."""
    train, held = [], []
    for language in ("de", "fr", "es"):
        found = clipkit.clips(language)
        train += found[:8]
        held += found[8:10]
    return train, held


@torch.no_grad()
def translate_via_text(model, encoder, tok: TargetTokenizer, sentences: list) -> dict:
    """The decoder's translate task reading the text encoder's states of each foreign sentence; WER against the
    English reference (a crude score: a right translation in other words counts as errors)."""
    rows, edits, words = [], 0.0, 0
    for c in sentences:
        tokens = tok.encode(c.text)
        hyp = tok.decode(greedy(model, None, tok.prompt(c.language, "translate"), tok.eot, 2 * len(tokens) + 10,
                                text_states(encoder, tokens)))
        n = max(len(c.reference_en.split()), 1)
        edits += clipkit.wer(c.reference_en, hyp) * n
        words += n
        rows.append((c.language, c.text, c.reference_en, hyp))
    return {"wer": edits / max(words, 1), "examples": rows}


def print_shared(shared: dict) -> None:
    print(f"\nshared space: text encoder (2 layers) trained {shared['epochs']} epochs ({shared['steps']} steps, "
          f"{shared['train_s']:.0f} s) on the 60 training sentences, speech side frozen, alignment on "
          f"{'centred' if shared['centred_training'] else 'raw'} vectors\n")
    print("| text encoder | vectors | cosine same | cosine other | retrieval among 20 | reconstruction WER |")
    print("|---|---|---|---|---|---|")
    for key, label in (("before", "untrained, held-out"), ("after", "trained, held-out"),
                       ("train_sentences", "trained, 20 training sentences")):
        for kind in ("raw", "centred"):
            r = shared[key][kind]
            print(f"| {label} | {kind} | {r['cosine_same']:.3f} | {r['cosine_other']:.3f} | "
                  f"{100 * r['retrieval_accuracy']:.0f}% | {100 * r['reconstruction_wer']:.1f}% |")
    print("\nheld-out examples (text -> decoder output from the text encoder):")
    for text, hyp in shared["after"]["raw"]["examples"][:5]:
        print(f"  {text!r} -> {hyp!r}")
    t = shared["translations"]
    print(f"\ntranslation through the shared space (text encoder -> decoder, translate task; trained on "
          f"{shared['parallel_pairs']} de/fr/es -> en pairs, text only): WER vs the English reference "
          f"{100 * t['before']['wer']:.0f}% untrained, {100 * t['held_out']['wer']:.0f}% held out, "
          f"{100 * t['trained_on']['wer']:.0f}% on sentences it trained on")
    for key in ("held_out", "trained_on"):
        print(f"{key.replace('_', ' ')}:")
        for lang, text, ref, hyp in t[key]["examples"][:6]:
            print(f"  [{lang}] {text!r} -> {hyp!r} (reference {ref!r})")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--base", default=str(sources_root() / "whisper-base-ct2"),
                   help="CTranslate2 whisper-base folder (default: the one setup.sh reassembles; or any --base of "
                        "export train)")
    p.add_argument("--alphas", type=float, nargs="*", default=[1.0, 0.9])
    p.add_argument("--regularisers", nargs="+", default=["from_start"], choices=("from_start", "fisher"),
                   help="L_reg of the alpha < 1 runs (each alpha runs with each); fisher measures its weights on "
                        "30 anchor sentences of general English (not the test set)")
    p.add_argument("--shared-epochs", type=int, default=20, help="text encoder epochs (0: skip the shared space)")
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--lr", type=float, default=5e-5)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--text-lr", type=float, default=1e-3)
    p.add_argument("--no-centre", action="store_true", help="align raw (not centred) sentence vectors")
    p.add_argument("--out", type=Path, default=ROOT / "docs" / "results" / "adaptation.json")
    p.add_argument("--max-sentences", type=int, default=None,
                   help="only the first N sentences of each set (a smoke run: seconds instead of minutes)")
    p.add_argument("--pack-check", action="store_true",
                   help="also export the stock model and each fine-tuned one as int8 packs and score them through the "
                        "engine (onnxruntime, the app's path: 30 s windows, greedy, timestamps) on the same clips")
    p.add_argument("--states-cache", type=Path, default=None,
                   help="keep the speech encoder's outputs here between runs (keyed by base, texts and features): "
                        "a sweep of alphas/epochs/lr then skips the ~2 min of encoding (default: "
                        "<cache>/bench/adaptation)")
    p.add_argument("--no-states-cache", action="store_true", help="encode every clip again")
    args = p.parse_args()
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(name)s: %(message)s",
                        datefmt="%H:%M:%S")
    torch.set_num_threads(args.threads)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="parley-adapt-") as tmp:
        work = Path(tmp)
        cache = work / "espeak"
        n = args.max_sentences
        train_dir = write_folder(work / "train", term_sentences(TRAIN_FRAMES, 60, 1)[:n], cache, "t")
        held_dir = write_folder(work / "held", term_sentences(HELD_OUT_FRAMES, 20, 2, offset=True)[:n], cache, "h")
        general_dir = write_folder(work / "general", [c.text for c in clipkit.clips("en")[:20]][:n], cache, "g")
        anchor_dir = write_folder(work / "anchor", ([c.text for c in clipkit.clips("en")[20:30]] +
                                                    list(ANCHOR_SENTENCES))[:n], cache, "a")
        base, vocab, source = load_base(args.base)
        tok = TargetTokenizer(vocab)
        sets = {}
        folders = [("train", train_dir), ("held", held_dir)] + ([("general", general_dir)] if args.alphas else [])
        if "fisher" in args.regularisers and any(a < 1 for a in args.alphas):
            folders.append(("anchor", anchor_dir))
        for name, folder in folders:
            examples, problems = load_examples(folder, base.dims.n_mels, tok, "en", max_tokens=200)
            assert not problems, problems
            sets[name] = examples
        log.info("encoding %d clips once (frozen speech encoder)", sum(len(v) for v in sets.values()))
        t0 = time.perf_counter()
        states_cache = None if args.no_states_cache else args.states_cache or record.work_dir("adaptation")
        states = cached_states(states_cache, source, base, sets)
        encode_s = time.perf_counter() - t0
        shared = None
        if args.shared_epochs:
            shared = run_shared(base, tok, sets, states, args)
        rows = []
        if args.alphas:
            rows.append({"run": "whisper-base (before)", "alpha": None, "train_s": 0.0,
                         "held": score(base, tok, sets["held"], states["held"]),
                         "general": score(base, tok, sets["general"], states["general"])})
            if args.pack_check:
                rows[0]["pack"] = pack_check(base, source, work / "pack-before", sets)
            log.info("before: held-out WER %.1f%%, general WER %.1f%%", 100 * rows[0]["held"]["wer"],
                     100 * rows[0]["general"]["wer"])
        runs = [(alpha, reg) for alpha in args.alphas for reg in (["from_start"] if alpha == 1 else args.regularisers)]
        for alpha, reg in runs:
            model = copy.deepcopy(base)
            options = TrainOptions(alpha=alpha, regulariser=reg, trainable="decoder", epochs=args.epochs, lr=args.lr,
                                   batch_size=args.batch_size, held_out=0.0, checkpoint_every=10_000)
            t0 = time.perf_counter()
            result = fine_tune(model, tok, sets["train"], [], options, work / f"run-{alpha}-{reg}",
                               audio_states=states["train"], anchors=sets.get("anchor"),
                               anchor_states=states.get("anchor"))
            train_s = time.perf_counter() - t0
            label = f"fine-tuned, alpha={alpha}" + ("" if alpha == 1 else f", L_reg {reg}")
            row = {"run": label, "alpha": alpha, "regulariser": reg, "train_s": train_s, "steps": result.steps,
                   "final_loss": result.history[-1].loss, "final_recon": result.history[-1].recon,
                   "final_reg": result.history[-1].reg,
                   "held": score(model, tok, sets["held"], states["held"]),
                   "general": score(model, tok, sets["general"], states["general"])}
            if args.pack_check:
                row["pack"] = pack_check(model, source, work / f"pack-{alpha}-{reg}", sets)
            rows.append(row)
            log.info("alpha %.2f %s: held-out WER %.1f%%, general WER %.1f%%", alpha, reg, 100 * row["held"]["wer"],
                     100 * row["general"]["wer"])
            del model
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"\nwhisper-base ({source}), {len(sets['train'])} espeak-ng training sentences, {args.threads} CPU thread(s)")
    if shared is not None:
        print_shared(shared)
    if rows:
        print(f"\ndecoder fine-tuned {args.epochs} epochs, lr {args.lr}, batch {args.batch_size}\n")
        print(markdown(rows))
    print(f"\nencoder outputs of {sum(len(v) for v in sets.values())} clips computed once in {encode_s:.0f} s; "
          f"peak RSS {peak_mb:.0f} MB; whole run {time.perf_counter() - started:.0f} s")
    config = {k: record.shown(v) if isinstance(v, Path) or k == "base" else v for k, v in vars(args).items()}
    title = (f"Fine-tuning whisper-base on 10 new terms, decoder only, {args.epochs} epochs, lr {args.lr}, "
             f"{args.threads} thread(s)")
    record.write(args.out, title, {"config": config, "encode_s": round(encode_s, 1), "peak_rss_mb": round(peak_mb),
                                   "rows": rows, "shared": shared}, markdown(rows) if rows else "(no fine-tuning runs)",
                 packages=("torch",))
    return 0


def pack_check(model, source: Path, work: Path, sets: dict) -> dict:
    """Export `model` as an int8 pack (as `python -m export train` does) and score it through the engine."""
    from engine.whisper import WhisperModel
    from engine.whisper.transcribe import TranscribeOptions
    from export.train.base import export_trained
    from export.vocab import read_source_vocab

    pack = export_trained(model, read_source_vocab(source), work / "train", work / "pack", "int8", "whisper-base-check")
    engine_model = WhisperModel.load(pack, device="cpu", threads=torch.get_num_threads())
    options = TranscribeOptions(language="en", beam_size=1)
    result = {name: tally([(ex.text, engine_model.transcribe(str(ex.path), options).text) for ex in sets[name]])
              for name in ("held", "general")}
    model.train()
    log.info("int8 pack through the engine: held-out WER %.1f%% (term errors %s), general WER %.1f%%",
             100 * result["held"]["wer"], f"{100 * result['held']['term_error']:.0f}%", 100 * result["general"]["wer"])
    return result


def markdown(rows: list[dict]) -> str:
    lines = ["| run | error rate on the new terms | held-out term-sentence WER | general WER | train time | "
             "final L_recon | final L_reg |", "|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['run']} | {100 * (1 - r['held']['term_recall']):.0f}% | {100 * r['held']['wer']:.1f}% | "
                     f"{100 * r['general']['wer']:.1f}% | {r['train_s']:.0f} s | "
                     f"{r.get('final_recon', float('nan')):.3f} | {r.get('final_reg', float('nan')):.3g} |")
    if any("pack" in r for r in rows):
        lines += ["", "The same models exported as int8 packs, through the engine (onnxruntime; 30 s windows, greedy):",
                  "", "| run | error rate on the new terms | held-out term-sentence WER | general WER |", "|---|---|---|---|"]
        for r in rows:
            if "pack" in r:
                p = r["pack"]
                lines.append(f"| {r['run']} | {100 * p['held']['term_error']:.0f}% | {100 * p['held']['wer']:.1f}% | "
                             f"{100 * p['general']['wer']:.1f}% |")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
