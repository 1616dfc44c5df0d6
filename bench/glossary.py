"""Does a typed glossary make whisper-base write the user's words, and what does it cost elsewhere? One run.

    .venv/bin/python bench/glossary.py                    # whisper-base int8 (setup.sh builds it), beam 5, 2 threads
    .venv/bin/python bench/glossary.py --bias 1 2 4       # more logit-bias strengths

Ten names and terms (real but rare: Kubernetes, Zyrtec, Okonkwo, Siobhan, Grafana; invented: Quillbrook,
Draxelon, Vantorix, Tessaline, Xiomara), two sentences each, spoken by espeak-ng voices (en-us and British
received pronunciation by default). Nothing was ever trained or tuned on these voices or sentences: the
glossary is only typed. Each clip is transcribed by Parley's file path (``WhisperModel.transcribe``) in four
arms: no glossary; the glossary as a prompt only; the logit bias on the terms' tokens only; both. Scored:
- term error rate: the share of term occurrences in the reference not written exactly in the transcript
  (after engine.metrics.normalize_text; "Okonkwo's" counts as "okonkwos", so the sentences avoid that);
- WER of the term sentences (the words around the terms too);
- general WER: English sentences without any term (bench/clips.py, the same voices) and the recorded human
  clips bench/clips.py knows (beckett, two_cities): the bias must not hurt speech that has none of the terms.
A term whose natural spelling espeak-ng misreads is spoken from its "sounds like" (as the glossary gives it).
Results print as a table and go to docs/results/glossary.{json,md} (``--out``).
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench import clips as clipkit  # noqa: E402
from bench import record  # noqa: E402
from engine.glossary import Glossary, Term, parse_glossary  # noqa: E402
from engine.metrics import normalize_text, wer  # noqa: E402

GLOSSARY = """\
Kubernetes
Zyrtec = zeer tech
Okonkwo = oh konk woe
Siobhan = shiv awn
Grafana
Quillbrook
Draxelon
Vantorix
Tessaline
Xiomara = see oh mara
"""

# Two sentences per term, in the order of GLOSSARY; every sentence uses its term once.
TERM_SENTENCES = (
    "We moved the billing service to Kubernetes last spring.",
    "Our Kubernetes cluster restarts every night at two.",
    "She took a Zyrtec before the long walk in the park.",
    "The pharmacy had run out of Zyrtec by Friday.",
    "Doctor Okonkwo will chair the meeting on Tuesday.",
    "Please send the signed contract to Mister Okonkwo today.",
    "Siobhan found the missing keys under the sofa.",
    "I asked Siobhan to book a table for six.",
    "The new dashboard in Grafana shows the error rate.",
    "He opened Grafana and zoomed in on the last hour.",
    "The train to Quillbrook leaves from platform four.",
    "My aunt has lived in Quillbrook for thirty years.",
    "Draxelon makes the sensors inside these cameras.",
    "We signed a three year deal with Draxelon in March.",
    "Add two drops of Vantorix to the cleaning water.",
    "The label says Vantorix must be kept away from heat.",
    "Tessaline is the name of the new reading app.",
    "The teachers liked Tessaline more than the old app.",
    "Xiomara will present the results after lunch.",
    "The flowers on the table are a gift from Xiomara.",
)

ARMS = ("none", "prompt", "bias", "both")


def term_hits(reference: str, hypothesis: str, term: str) -> tuple[int, int]:
    """(occurrences of ``term`` in the reference, how many of them the hypothesis writes), normalised words."""
    t = normalize_text(term).split()
    ref, hyp = normalize_text(reference).split(), normalize_text(hypothesis).split()

    def count(words: list[str]) -> int:
        return sum(words[i:i + len(t)] == t for i in range(len(words) - len(t) + 1))

    n = count(ref)
    return n, min(n, count(hyp))


def spoken(sentence: str, glossary: Glossary) -> str:
    """The sentence as espeak-ng is given it: each term with a sounds-like replaced by its first one."""
    for term in glossary.terms:
        if term.sounds_like:
            sentence = sentence.replace(term.text, term.sounds_like[0])
    return sentence


def term_of(sentence: str, glossary: Glossary) -> Term | None:
    return next((t for t in glossary.terms if term_hits(sentence, sentence, t.text)[0]), None)


def build_corpus(work: Path, glossary: Glossary, voices: list[str], max_sentences: int | None,
                 general: int, human: bool) -> list[dict]:
    """[{id, kind: term|general|human, voice, wav, ref, term}] — synthesised (cached) under ``work``."""
    corpus = []
    sentences = TERM_SENTENCES[:max_sentences]
    plain = [c for c in clipkit.clips("en") if term_of(c.text, glossary) is None][:general]
    for voice in voices:
        for i, text in enumerate(sentences):
            clip = clipkit.Clip(f"term{i:02d}-{voice}", "en", text, text, spoken(text, glossary))
            corpus.append({"id": clip.id, "kind": "term", "voice": voice, "ref": text,
                           "term": term_of(text, glossary).text, "wav": clipkit.synthesize(clip, work, voice)})
        for c in plain:
            corpus.append({"id": f"{c.id}-{voice}", "kind": "general", "voice": voice, "ref": c.text, "term": None,
                           "wav": clipkit.synthesize(c, work, voice)})
    if human:
        for path in clipkit.human_clips(work):
            if path.stem in clipkit.HUMAN_TRANSCRIPTS:  # endgame_nagg_nell has no checked reference
                corpus.append({"id": f"human_{path.stem}", "kind": "human", "voice": "human", "term": None,
                               "ref": clipkit.HUMAN_TRANSCRIPTS[path.stem], "wav": path})
    return corpus


def arm_options(arm: str, glossary: Glossary, beam_size: int, bias: float, first_bias: float | None = None):
    from engine.whisper.transcribe import TranscribeOptions

    base = TranscribeOptions(language="en", beam_size=beam_size)
    if arm == "none":
        return base
    return TranscribeOptions(language="en", beam_size=beam_size, glossary=glossary,
                             glossary_prompt=arm in ("prompt", "both"),
                             glossary_bias=bias if arm in ("bias", "both") else 0.0,
                             glossary_first_bias=first_bias if arm in ("bias", "both") else None)


def share_encodings(model) -> None:
    """Each clip's audio is encoded once for all arms (the encoder never sees the glossary): ``model.encode``
    answers a mel it has seen with the states it computed then."""
    encode, seen = model.encode, {}

    def encode_once(mel):
        key = hashlib.sha1(mel.tobytes()).hexdigest()
        if key not in seen:
            seen[key] = encode(mel)
        return seen[key]

    model.encode = encode_once


def wait_while(path: Path | None) -> None:
    while path is not None and path.exists():
        time.sleep(5)


def score(corpus: list[dict], texts: dict[str, str], glossary: Glossary) -> dict:
    def pooled_wer(kind: str) -> float | None:
        items = [c for c in corpus if c["kind"] == kind]
        words = [len(normalize_text(c["ref"]).split()) for c in items]
        if not items:
            return None
        return round(100 * sum(wer(c["ref"], texts[c["id"]]) * n for c, n in zip(items, words)) / sum(words), 2)

    occurrences = hits = 0
    for c in corpus:
        if c["kind"] == "term":
            n, h = term_hits(c["ref"], texts[c["id"]], c["term"])
            occurrences, hits = occurrences + n, hits + h
    by_voice = {}
    for voice in sorted({c["voice"] for c in corpus if c["kind"] == "term"}):
        items = [c for c in corpus if c["kind"] == "term" and c["voice"] == voice]
        pairs = [term_hits(c["ref"], texts[c["id"]], c["term"]) for c in items]
        by_voice[voice] = round(100 * (1 - sum(h for _, h in pairs) / max(sum(n for n, _ in pairs), 1)), 1)
    return {"term_occurrences": occurrences, "terms_written": hits,
            "term_error_pct": round(100 * (1 - hits / occurrences), 1) if occurrences else None,
            "term_error_pct_by_voice": by_voice,
            "term_sentence_wer_pct": pooled_wer("term"), "general_wer_pct": pooled_wer("general"),
            "human_wer_pct": pooled_wer("human")}


def table(rows: list[dict]) -> str:
    def pct(v):
        return "–" if v is None else f"{v:.1f}%"

    lines = ["| arm | term errors | term errors by voice | WER, term sentences | WER, general sentences "
             "| WER, human clips | time |", "|---|---|---|---|---|---|---|"]
    for r in rows:
        voices = ", ".join(f"{v} {e:.0f}%" for v, e in r["term_error_pct_by_voice"].items())
        lines.append(f"| {r['arm']} | {pct(r['term_error_pct'])} ({r['term_occurrences'] - r['terms_written']}/"
                     f"{r['term_occurrences']}) | {voices} | {pct(r['term_sentence_wer_pct'])} | "
                     f"{pct(r['general_wer_pct'])} | {pct(r['human_wer_pct'])} | {r['wall_s']:.0f} s |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="whisper-base", help="pack folder or name (default: %(default)s)")
    ap.add_argument("--precision", default="int8")
    ap.add_argument("--beam-size", type=int, default=5)
    ap.add_argument("--bias", type=float, nargs="+", default=[2.0],
                    help="logit bonus(es) of the bias arms (one 'bias' and one 'both' arm per value)")
    ap.add_argument("--first-bias", type=float, default=None,
                    help="the bonus of a term's first token in the bias arms (default: the same as --bias)")
    ap.add_argument("--arms", nargs="+", choices=ARMS, default=list(ARMS), help="which arms to run (none is kept)")
    ap.add_argument("--voices", nargs="+", default=["en-us", "en-gb-x-rp"], help="espeak-ng voices")
    ap.add_argument("--max-sentences", type=int, default=None, help="the first N term sentences (smoke runs)")
    ap.add_argument("--general", type=int, default=8, help="term-free espeak-ng sentences per voice")
    ap.add_argument("--no-human", action="store_true", help="without the recorded human clips")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--pause-while", type=Path, default=None,
                    help="between clips, wait while this file exists (a shared machine's 'quiet please' flag)")
    ap.add_argument("--work", type=Path, default=None, help="synthesised speech (default: <cache>/bench/glossary)")
    ap.add_argument("--out", type=Path, default=record.RESULTS / "glossary.json")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")

    from engine.jobs import open_model

    glossary = parse_glossary(GLOSSARY, "bench/glossary.py")
    work = args.work or record.work_dir("glossary")
    corpus = build_corpus(work, glossary, args.voices, args.max_sentences, args.general, not args.no_human)
    model = open_model(args.model, args.precision, "cpu", args.threads)
    share_encodings(model)
    arms = [(a, 0.0) for a in ("none", "prompt") if a == "none" or a in args.arms]
    arms += [(a, b) for b in args.bias for a in ("bias", "both") if a in args.arms]
    first = "" if args.first_bias is None else f", first +{args.first_bias:g}"
    rows, texts_by_arm = [], {}
    for arm, bias in arms:
        name = arm if arm in ("none", "prompt") else f"{arm} (+{bias:g}{first})"
        options = arm_options(arm, glossary, args.beam_size, bias, args.first_bias)
        texts: dict[str, str] = {}
        t0 = time.perf_counter()
        for item in corpus:
            wait_while(args.pause_while)
            texts[item["id"]] = " ".join(s.text.strip() for s in model.transcribe(str(item["wav"]), options).segments)
        wall = time.perf_counter() - t0
        rows.append({"arm": name, "prompt": arm in ("prompt", "both"), "bias": bias,
                     "first_bias": args.first_bias if arm in ("bias", "both") else None, "wall_s": round(wall, 1),
                     **score(corpus, texts, glossary)})
        texts_by_arm[name] = texts
        print(f"{name}: terms {rows[-1]['term_error_pct']}% wrong, general WER {rows[-1]['general_wer_pct']}%, "
              f"human WER {rows[-1]['human_wer_pct']}%, {wall:.0f} s", file=sys.stderr)
    print(table(rows))
    missed = {name: {c["id"]: texts[c["id"]] for c in corpus if c["kind"] == "term"
                     and term_hits(c["ref"], texts[c["id"]], c["term"])[1] == 0}
              for name, texts in texts_by_arm.items()}
    data = {"model": f"{args.model} {args.precision}", "beam_size": args.beam_size, "threads": args.threads,
            "voices": args.voices, "glossary": GLOSSARY.splitlines(),
            "clips": {k: sum(c["kind"] == k for c in corpus) for k in ("term", "general", "human")},
            "rows": rows, "refs": {c["id"]: c["ref"] for c in corpus}, "missed_terms": missed,
            "texts": texts_by_arm}
    n = data["clips"]
    note = (f"whisper-base {args.precision}, beam {args.beam_size}, {args.threads} threads, CPU. Clips: {n['term']} "
            f"term sentences and {n['general']} term-free sentences (espeak-ng voices {', '.join(args.voices)}), "
            f"{n['human']} recorded human clips. Term errors: share of the terms' occurrences not written exactly "
            f"(normalised). Arms: none; prompt = every window primed with the term list; bias = +b on the logit of "
            f"each token that continues a term (prefix trie); both. Time: the arm's wall time (the first arm's "
            f"includes encoding every clip, which the others reuse).\n\n")
    # --pause-while only waits between clips (it changes no figure) and names a file of one machine: not recorded.
    argv = sys.argv[1:] if argv is None else argv
    shown_args = [a for i, a in enumerate(argv) if a != "--pause-while" and (i == 0 or argv[i - 1] != "--pause-while")]
    record.write(args.out, "Glossary: prompt and logit bias vs none", data, note + table(rows),
                 command=record.command_line([sys.argv[0], *shown_args]))
    print(f"wrote {record.shown(args.out)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "2")
    sys.exit(main())
