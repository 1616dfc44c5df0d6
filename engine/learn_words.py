"""Learn these words: from a glossary alone, training speech — and the check a learned model must pass.

A glossary (engine.glossary) names the words; nobody has to record them. Parley writes sentences that use each
term (carrier sentences from templates, plus the glossary's own example sentences), speaks them with several
espeak-ng voices, speeds and pitches (a term with a "sounds like" is spoken from it and written as the term),
and fine-tunes on them (``python -m export learn``; torch stays in export/). Two sets are kept apart:

- **training**: the training carriers and the examples, spoken by ``TRAIN_VOICES``;
- **validation**: other carriers, spoken by ``VALIDATION_VOICES`` (voices and sentences training never saw).

General English is spoken the same way, in two disjoint halves: ``FISHER_SENTENCES`` (training voices) are the
anchors the Fisher-weighted L_reg rests on; ``GATE_SENTENCES`` (validation voices) are what the gate measures.
en-us and en-gb-x-rp are in neither set: bench/glossary.py tests with them, so its test voices are never heard
in training.

The gate (:func:`gate`): a learned model is installed only if the error on the held-out terms falls and the
general WER rises by at most ``MAX_GENERAL_RISE`` points; otherwise one line says why and the current model stays.

No torch and no Qt here: the CLI, the app and the tests share it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import shutil
import subprocess
from collections.abc import Iterable, Sequence
from pathlib import Path

from engine.glossary import Glossary, Term
from engine.metrics import normalize_text, wer

# Voices as espeak-ng names them, with a variant (+f2: a female voice, +m3: another male one).
TRAIN_VOICES = ("en-gb", "en-gb-scotland+f2", "en-029+m3", "en-gb-x-gbclan+f4", "en-gb+m5", "en-029+f3")
VALIDATION_VOICES = ("en-us-nyc", "en-gb-x-gbcwmd+f2")
TRAIN_SPEEDS = (135, 155, 175)  # words per minute
VALIDATION_SPEEDS = (145, 165)
TRAIN_PITCHES = (35, 50, 65)  # espeak-ng -p, 0..99 (50 is the voice's own)
VALIDATION_PITCHES = (45, 60)
MAX_GENERAL_RISE = 0.5  # points of general WER a learned model may add and still be installed

# Carrier sentences: {t} is the term. Training and validation use different ones.
TRAIN_CARRIERS = (
    "{t} will present the quarterly results to the board on Monday.",
    "We ordered three new {t} units for the laboratory.",
    "The {t} project was delayed because of the storm.",
    "Please send the {t} report to Maria before lunch.",
    "The engineers said {t} works well in the cold.",
    "I met the people from {t} at the conference in Lisbon.",
    "The new version of {t} is faster than the old one.",
    "She asked whether {t} supports the older printers.",
    "Nobody in the office had heard of {t} before today.",
    "He wrote {t} on the whiteboard and underlined it twice.",
    "Can you check what {t} said about the schedule?",
    "Everyone agreed that {t} was the right choice.",
)
VALIDATION_CARRIERS = (
    "Yesterday I talked to {t} for almost an hour.",
    "The notes about {t} are in the blue folder.",
    "We will hear more about {t} at the next meeting.",
    "I think {t} is exactly what we need here.",
)
# General English (no term), in two disjoint halves; none is a sentence of bench/clips.py or bench/glossary.py.
FISHER_SENTENCES = (
    "I usually walk to work when the weather is nice.",
    "The children were playing football in the street.",
    "Could you pass me the salt and the pepper, please?",
    "My brother bought a second hand car last summer.",
    "We need to buy milk, bread and some apples.",
    "The concert was cancelled because the singer was ill.",
    "She has been learning to play the piano for two years.",
    "Turn left at the bank and the station is on your right.",
    "The kitchen light has been flickering all week.",
    "He forgot his umbrella and came home soaking wet.",
    "Our neighbours are painting their house bright yellow.",
    "The doctor told him to get more sleep and drink water.",
    "It takes about twenty minutes to get there by bus.",
    "I have not seen that film, but my sister loved it.",
    "The library opens at nine and closes at six.",
    "Please write your name at the top of the page.",
    "They spent the whole afternoon cleaning the garage.",
    "The soup needs a little more salt, I think.",
    "We watched the sunset from the top of the hill.",
    "The printer on the second floor is out of paper again.",
)
GATE_SENTENCES = (
    "The shop on the corner sells fresh fish every Friday.",
    "I will call you back as soon as I get home.",
    "The baby finally fell asleep after midnight.",
    "He keeps his bicycle in the hall next to the door.",
    "We are planning a small party for her birthday.",
    "The meeting room is booked until three o'clock.",
    "My phone battery is almost empty, can I borrow a charger?",
    "The river was so cold that nobody wanted to swim.",
    "She always drinks a cup of tea before she goes to bed.",
    "The bus was late, so we took a taxi to the airport.",
)


@dataclasses.dataclass(frozen=True)
class Utterance:
    """One sentence to speak: ``text`` is what the transcript must say, ``spoken`` what espeak-ng is given."""

    text: str
    spoken: str
    voice: str
    speed: int  # words per minute
    pitch: int  # espeak-ng -p
    kind: str  # "term" (a carrier), "example" (the glossary's own sentence), "general"
    term: str | None = None

    @property
    def key(self) -> str:
        """A name for the clip: readable, and unique for everything that shapes its sound."""
        h = hashlib.sha256(f"{self.spoken}\x00{self.voice}\x00{self.speed}\x00{self.pitch}".encode()).hexdigest()
        words = "-".join(normalize_text(self.text).split()[:4]) or "line"
        return f"{self.kind}-{words}-{h[:12]}"


@dataclasses.dataclass(frozen=True)
class Corpus:
    train: tuple[Utterance, ...]  # term carriers and examples, training voices
    validation: tuple[Utterance, ...]  # other carriers, validation voices
    fisher: tuple[Utterance, ...]  # general English, training voices (the anchors of L_reg)
    gate: tuple[Utterance, ...]  # general English, validation voices (what the gate measures)


def _spoken(sentence: str, term: Term, nth: int) -> str:
    """The sentence as espeak-ng is given it: the term said from one of its "sounds like" (in turn)."""
    if not term.sounds_like:
        return sentence
    return sentence.replace(term.text, term.sounds_like[nth % len(term.sounds_like)])


def _style(n: int, voices: Sequence[str], speeds: Sequence[int], pitches: Sequence[int]) -> tuple[str, int, int]:
    """The n-th voice/speed/pitch: every voice in turn, speeds and pitches on their own cycles (co-prime with
    the voices' in the defaults), so one term is heard in several voices at several speeds and pitches."""
    return voices[n % len(voices)], speeds[(n // len(voices) + n) % len(speeds)], pitches[(n * 2 + n // 3) % len(pitches)]


def write_sentences(glossary: Glossary, per_term: int = 6, validation_per_term: int = 2,
                    train_voices: Sequence[str] = TRAIN_VOICES, validation_voices: Sequence[str] = VALIDATION_VOICES,
                    general: bool = True) -> Corpus:
    """The sentences to learn ``glossary`` from, and those to check it with; the same glossary always gives
    the same corpus. Each term appears in ``per_term`` training carriers (a different set per term) and in
    each of its example sentences, and in ``validation_per_term`` validation carriers."""
    if not glossary:
        raise ValueError("the glossary has no terms: nothing to learn")
    if not 1 <= per_term <= len(TRAIN_CARRIERS) or not 1 <= validation_per_term <= len(VALIDATION_CARRIERS):
        raise ValueError(f"per_term must be 1..{len(TRAIN_CARRIERS)} and validation_per_term "
                         f"1..{len(VALIDATION_CARRIERS)}")
    if set(train_voices) & set(validation_voices):
        raise ValueError("a voice cannot be both a training and a validation voice")
    train: list[Utterance] = []
    validation: list[Utterance] = []
    for i, term in enumerate(glossary.terms):
        for k in range(per_term):
            sentence = TRAIN_CARRIERS[(i * 5 + k) % len(TRAIN_CARRIERS)].format(t=term.text)
            voice, speed, pitch = _style(len(train), train_voices, TRAIN_SPEEDS, TRAIN_PITCHES)
            train.append(Utterance(sentence, _spoken(sentence, term, k), voice, speed, pitch, "term", term.text))
        for k, sentence in enumerate(term.examples):
            voice, speed, pitch = _style(len(train), train_voices, TRAIN_SPEEDS, TRAIN_PITCHES)
            train.append(Utterance(sentence, _spoken(sentence, term, k), voice, speed, pitch, "example", term.text))
        for k in range(validation_per_term):
            sentence = VALIDATION_CARRIERS[(i + k) % len(VALIDATION_CARRIERS)].format(t=term.text)
            voice, speed, pitch = _style(len(validation), validation_voices, VALIDATION_SPEEDS, VALIDATION_PITCHES)
            validation.append(Utterance(sentence, _spoken(sentence, term, k + 1), voice, speed, pitch, "term",
                                        term.text))
    fisher, gate_set = general_sentences(train_voices, validation_voices) if general else ((), ())
    return Corpus(tuple(train), tuple(validation), fisher, gate_set)


def general_sentences(train_voices: Sequence[str] = TRAIN_VOICES, validation_voices: Sequence[str] = VALIDATION_VOICES
                      ) -> tuple[tuple[Utterance, ...], tuple[Utterance, ...]]:
    """General English without any term: (the Fisher anchors, in the training voices; the gate's set, each
    sentence in every validation voice)."""
    fisher = tuple(Utterance(s, s, *_style(n, train_voices, TRAIN_SPEEDS, TRAIN_PITCHES), "general")
                   for n, s in enumerate(FISHER_SENTENCES))
    gate_set = tuple(Utterance(s, s, voice, VALIDATION_SPEEDS[(n + m) % len(VALIDATION_SPEEDS)],
                               VALIDATION_PITCHES[n % len(VALIDATION_PITCHES)], "general")
                     for n, s in enumerate(GATE_SENTENCES) for m, voice in enumerate(validation_voices))
    return fisher, gate_set


_known: set[str] | None = None


def known_voices() -> set[str]:
    """The voice names espeak-ng has (languages such as 'en-gb-scotland', and variants as '+f2'), lower case. It
    speaks an unknown voice's text with its default voice and says nothing, so a voice is checked here first."""
    global _known
    if _known is None:
        exe = shutil.which("espeak-ng")
        if exe is None:
            return set()
        names: set[str] = set()
        for which, prefix in (("", ""), ("=variant", "+")):
            out = subprocess.run([exe, f"--voices{which}"], capture_output=True, text=True).stdout
            for line in out.splitlines()[1:]:
                cols = line.split()
                if len(cols) >= 5:
                    names.add(prefix + (cols[1] if not prefix else cols[4].rpartition("/")[2]).lower())
        _known = names
    return _known


def speak(utterance: Utterance, folder: str | Path) -> Path:
    """``utterance`` spoken by espeak-ng into ``folder`` as ``<key>.wav`` with its text in ``<key>.txt`` (the
    layout ``python -m export train --data`` reads). Kept: a clip already there is not spoken again."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    wav = folder / f"{utterance.key}.wav"
    if not wav.exists():
        exe = shutil.which("espeak-ng")
        if exe is None:
            raise RuntimeError("espeak-ng is not installed: Parley speaks the glossary's sentences with it "
                               "(apt install espeak-ng)")
        base, plus, variant = utterance.voice.lower().partition("+")
        known = known_voices()
        if base not in known or (plus and "+" + variant not in known):
            raise RuntimeError(f"espeak-ng could not speak with voice {utterance.voice!r}: it has no such voice "
                               "(espeak-ng --voices lists them; a variant is written voice+f2)")
        tmp = wav.with_suffix(".tmp.wav")
        done = subprocess.run([exe, "-v", utterance.voice, "-s", str(utterance.speed), "-p", str(utterance.pitch),
                               "-w", str(tmp), utterance.spoken], capture_output=True, text=True)
        if done.returncode != 0 or not tmp.exists():
            tmp.unlink(missing_ok=True)
            raise RuntimeError(f"espeak-ng could not speak with voice {utterance.voice!r}: "
                               f"{(done.stderr or '').strip() or 'exit code ' + str(done.returncode)}")
        tmp.replace(wav)
    wav.with_suffix(".txt").write_text(utterance.text + "\n", encoding="utf-8")
    return wav


def speak_all(utterances: Iterable[Utterance], folder: str | Path) -> list[Path]:
    return [speak(u, folder) for u in utterances]


# -- measuring and deciding -------------------------------------------------------------------------------------

def term_hits(reference: str, hypothesis: str, term: str) -> tuple[int, int]:
    """(occurrences of ``term`` in the reference, how many of them the hypothesis writes), on normalised words."""
    t = normalize_text(term).split()
    ref, hyp = normalize_text(reference).split(), normalize_text(hypothesis).split()

    def count(words: list[str]) -> int:
        return sum(words[i:i + len(t)] == t for i in range(len(words) - len(t) + 1)) if t else 0

    n = count(ref)
    return n, min(n, count(hyp))


def term_error_rate(rows: Iterable[tuple[str, str]], terms: Iterable[str]) -> tuple[float, int]:
    """(share of the terms' occurrences in the references not written in the hypotheses, occurrences) over
    (reference, hypothesis) rows."""
    terms = tuple(terms)
    occurrences = written = 0
    for ref, hyp in rows:
        for term in terms:
            n, h = term_hits(ref, hyp, term)
            occurrences, written = occurrences + n, written + h
    return (1 - written / occurrences if occurrences else 0.0), occurrences


def corpus_wer(rows: Iterable[tuple[str, str]]) -> tuple[float, int]:
    """(word errors over all reference words, reference words) of (reference, hypothesis) rows."""
    edits = 0.0
    words = 0
    for ref, hyp in rows:
        n = len(normalize_text(ref).split())
        edits += wer(ref, hyp) * max(n, 1)
        words += n
    return (edits / words if words else 0.0), words


@dataclasses.dataclass(frozen=True)
class Scores:
    """One model on the validation set: the error it must lower and the general WER it must keep."""

    target: float  # term error rate (a glossary) or WER of the held-out corrections, 0..1
    target_name: str  # "term errors" or "WER on held-out corrections"
    general: float  # WER on the general (anchor) clips, 0..1


def gate(current: Scores, candidate: Scores, max_general_rise: float = MAX_GENERAL_RISE) -> tuple[bool, str]:
    """Whether the learned model replaces the current one, and the one line that says so or why not."""
    rise = 100 * (candidate.general - current.general)
    what = (f"{candidate.target_name} on held-out voices {100 * current.target:.1f}% → {100 * candidate.target:.1f}%, "
            f"general WER {100 * current.general:.1f}% → {100 * candidate.general:.1f}% ({rise:+.1f} points)")
    if candidate.target >= current.target:
        return False, (f"not installed: the {candidate.target_name} did not fall ({what}); the current model is kept")
    if rise > max_general_rise + 1e-9:
        return False, (f"not installed: general WER rose {rise:.1f} points, more than {max_general_rise:g} ({what}); "
                       "the current model is kept")
    return True, f"installed: {what}"
