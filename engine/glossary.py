"""A glossary: the user's own words (names, jargon, product terms), written by hand in a small text file.

    # my words (a line starting with # is a comment)
    Kubernetes
    Okonkwo = oh conk woe
        Mr Okonkwo chairs the meeting.
        We asked Okonkwo about the budget.
    Zyrtec = zeer tech; zir tek

One term per line; after ``=``, how it sounds (``;`` between several), written as a reader would say it;
indented lines under a term are example sentences that use it. Recognition is biased toward the terms
(``Glossary.prompt`` primes Whisper with them, ``Glossary.terms`` feed the decoder's logit bias,
engine.whisper.decoding.TermBias); the sounds-like spellings and examples are what speech is synthesised from
when Parley learns the words. Once a model has learned a term, decoding with it no longer primes or biases that
term (:func:`for_pack`). A bad line is a :class:`GlossaryError` naming the file and the line.
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

from engine.errors import ParleyError
from engine.metrics import normalize_text

log = logging.getLogger(__name__)

MAX_TERMS = 200  # the logit bias stays cheap (a dict lookup per token and suffix length) well past this
MAX_TERM_CHARS = 60  # a term is a word or a short name, not a sentence
SUFFIX = ".txt"


class GlossaryError(ParleyError, ValueError):
    """A glossary file that cannot be read: the message is ``FILE:LINE: what is wrong; what to write``."""


@dataclasses.dataclass(frozen=True)
class Term:
    text: str  # as it must be written in the transcript ("Okonkwo", "Kubernetes")
    sounds_like: tuple[str, ...] = ()  # how it is said, in ordinary spelling ("oh conk woe")
    examples: tuple[str, ...] = ()  # sentences that use it


@dataclasses.dataclass(frozen=True)
class Glossary:
    terms: tuple[Term, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.terms)

    @property
    def words(self) -> tuple[str, ...]:
        """The terms as written, in file order."""
        return tuple(t.text for t in self.terms)

    def prompt(self) -> str:
        """What Whisper is primed with (the text it reads as 'what was said before'): the terms as a list,
        so their spelling is the likeliest continuation when they are heard."""
        return ", ".join(self.words) + "." if self.terms else ""


def for_pack(glossary: Glossary | None, pack) -> Glossary | None:
    """``glossary`` as decoding with the model ``pack`` (an engine.packs.whisper_pack.WhisperPack) should use it:
    without the terms that model has learned, the others kept in order.

    A pack written by Learn these words lists the terms it was taught (``learned_terms`` in its parley.json).
    Priming and biasing a model toward words it already writes pushes them where they are not: on
    bench/learn_words.py's unseen voices the learned whisper-base wrote 5.0 % of the terms wrong alone and
    12.5 % with the glossary on (docs/training.md). A term is dropped only as written there (a respelled term
    is prompted again: the model learned the old spelling). A stock pack, or any object without
    ``learned_terms``, keeps the whole glossary. Where a glossary becomes a model's prompt and bias (the file
    path, engine.whisper.transcribe; the live one) it goes through here first."""
    if not glossary:
        return glossary
    learned = set(getattr(pack, "learned_terms", ()) or ())
    kept = tuple(t for t in glossary.terms if t.text not in learned)
    if len(kept) < len(glossary.terms):
        log.info("the model learned %d of the glossary's %d terms: they are not prompted or biased again",
                 len(glossary.terms) - len(kept), len(glossary.terms))
        return Glossary(kept)
    return glossary


def parse_glossary(text: str, source: str = "<glossary>") -> Glossary:
    """The glossary written in ``text``; ``source`` names it in errors (``source:line: …``)."""
    terms: list[Term] = []
    seen: dict[str, int] = {}
    examples: list[str] = []

    def close() -> None:
        if terms and examples:
            terms[-1] = dataclasses.replace(terms[-1], examples=tuple(examples))
        examples.clear()

    for number, raw in enumerate(text.splitlines(), 1):
        where = f"{source}:{number}"
        line = raw.rstrip()
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        if line[0] in " \t":  # an example sentence of the term above
            if not terms:
                raise GlossaryError(f"{where}: an indented line (an example sentence) before any term; "
                                    "write the term on its own line first, then indent its examples under it")
            sentence = line.strip()
            term = terms[-1].text
            if normalize_text(term) not in normalize_text(sentence):
                raise GlossaryError(f"{where}: the example {sentence!r} does not use the term {term!r} above it; "
                                    "examples are sentences with the term written as in the transcript")
            examples.append(sentence)
            continue
        close()
        word, eq, sounds = line.partition("=")
        word = " ".join(word.split())
        if not word:
            raise GlossaryError(f"{where}: no term before '='; write 'Term = how it sounds'")
        if len(word) > MAX_TERM_CHARS:
            raise GlossaryError(f"{where}: the term is {len(word)} characters long (at most {MAX_TERM_CHARS}); "
                                "a term is a word or a name — put sentences on indented lines under it")
        if not normalize_text(word):
            raise GlossaryError(f"{where}: {word!r} has no letters or digits; a term must be a word")
        spoken = tuple(" ".join(s.split()) for s in sounds.split(";"))
        if eq and not all(spoken):
            raise GlossaryError(f"{where}: an empty 'sounds like' after '='; write 'Term = how it sounds' "
                                "(several separated by ';'), or the term alone")
        key = normalize_text(word)
        if key in seen:
            raise GlossaryError(f"{where}: {word!r} is already on line {seen[key]}; each term once")
        seen[key] = number
        terms.append(Term(word, spoken if eq else ()))
        if len(terms) > MAX_TERMS:
            raise GlossaryError(f"{where}: more than {MAX_TERMS} terms; keep the glossary to the words "
                                "recognition gets wrong")
    close()
    return Glossary(tuple(terms))


def load_glossary(path: str | Path) -> Glossary:
    """Read a glossary file (UTF-8). A missing, unreadable or malformed file is a GlossaryError naming it."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise GlossaryError(f"{path}: no such glossary file") from None
    except OSError as e:
        raise GlossaryError(f"{path}: cannot read the glossary: {e.strerror or e}") from e
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = data[:e.start].count(b"\n") + 1
        raise GlossaryError(f"{path}:{line}: not UTF-8 text (byte {data[e.start]:#04x}); save the glossary "
                            "as UTF-8") from e
    if "\x00" in text:
        raise GlossaryError(f"{path}: not a text file; a glossary is plain text, one term per line")
    return parse_glossary(text, str(path))


def format_glossary(glossary: Glossary) -> str:
    """The file text of ``glossary`` (what :func:`parse_glossary` reads back as the same glossary)."""
    lines = []
    for term in glossary.terms:
        lines.append(term.text + (" = " + "; ".join(term.sounds_like) if term.sounds_like else ""))
        lines.extend("    " + e for e in term.examples)
    return "\n".join(lines) + ("\n" if lines else "")


def save_glossary(glossary: Glossary, path: str | Path, text: str | None = None) -> Path:
    """Write ``glossary`` to ``path`` atomically (a crash never leaves half a file): as ``text``, the user's own
    writing of it with their notes and blank lines, when given (the caller parsed it into ``glossary``)."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    if text is not None and not text.endswith("\n") and text:
        text += "\n"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_text(format_glossary(glossary) if text is None else text, encoding="utf-8")
        tmp.replace(path)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        raise GlossaryError(f"{path}: could not save the glossary: {e.strerror or e}") from e
    return path
