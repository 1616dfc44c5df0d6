"""Which installed pack translates (source, target); pivot through English when none does directly.

Packs are the folders under ``<packs root>/translation/`` (and any folders given) holding a text-
translation pack: ours (parley.json, kind "translation") or a hub Optimum export. A route is one
step (a direct pack) or two (source → en → target), and says so in its ``note``.

A folder that cannot be used (a damaged pack, a foreign model) is kept aside with the reason, never dropped
in silence: a request it would have served fails naming that folder and its file, and ``--list`` shows it.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from pathlib import Path

from engine.errors import PackError
from engine.translate.languages import canonical
from engine.translate.pack import _OPUS_NAME, TranslationPack

log = logging.getLogger(__name__)

PIVOT = "en"
HOW_TO_ADD = ("add a pack: `parley translate --download <hub repo, e.g. Xenova/opus-mt-{src}-{tgt}>` or "
              "`python -m export translation --from <Hugging Face model folder> --out {root}/<name>`")


class MissingPairError(PackError):
    """No installed pack (and no pivot through English) translates the requested pair."""


@dataclasses.dataclass(frozen=True)
class Step:
    pack: TranslationPack
    source: str
    target: str


@dataclasses.dataclass(frozen=True)
class Route:
    steps: tuple[Step, ...]
    note: str  # e.g. "fr → de via en (no direct fr → de pack): opus-mt-fr-en, opus-mt-en-de"

    @property
    def pivoted(self) -> bool:
        return len(self.steps) > 1


def default_root() -> Path:
    """``<packs root>/translation`` ($PARLEY_HOME/packs/translation, else the user cache's)."""
    from engine.packs.paths import packs_root

    return Path(packs_root()) / "translation"


def _claimed_pairs(folder: Path) -> set[tuple[str, str]]:
    """What an unusable folder says it translates (its parley.json, else an opus-mt name), for naming it when
    one of those pairs is asked for; empty when it says nothing."""
    try:
        langs = json.loads((folder / "parley.json").read_text(encoding="utf-8"))["languages"]
        sources, targets = langs["source"], langs["target"]
    except (OSError, ValueError, KeyError, TypeError):
        m = _OPUS_NAME.search(folder.name)
        sources, targets = (m.group(1).split("_"), m.group(2).split("_")) if m else ((), ())
    try:
        return {(canonical(s), canonical(t)) for s in sources for t in targets if s != t}
    except (AttributeError, TypeError):  # codes that are not strings
        return set()


class PairRegistry:
    def __init__(self, packs: list[TranslationPack], root: Path | None = None,
                 unusable: dict[Path, PackError] | None = None):
        self.packs = list(packs)
        self.root = root
        self.unusable = dict(unusable or {})  # folder → why it cannot be used (damaged, foreign)

    @classmethod
    def scan(cls, root: str | Path | None = None, extra: list[str | Path] = ()) -> PairRegistry:
        """Every readable translation pack directly under `root` (default: the packs root's
        ``translation/``) plus the `extra` folders. Folders that cannot be used are kept in ``unusable`` with
        the reason (hidden folders, such as an install's stage, are not looked at)."""
        root = Path(root) if root is not None else default_root()
        folders = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")) \
            if root.is_dir() else []
        packs, unusable = [], {}
        for folder in [*folders, *map(Path, extra)]:
            if not ((folder / "config.json").is_file() or (folder / "parley.json").is_file()):
                unusable[folder] = PackError(f"{folder}: not a translation pack (no parley.json or config.json); "
                                             "remove it")
                continue
            try:
                packs.append(TranslationPack.load(folder))
            except PackError as e:
                log.info("skipping %s: %s", folder, e)
                unusable[folder] = e
        return cls(packs, root, unusable)

    def pairs(self) -> list[tuple[str, str]]:
        return sorted({pair for pack in self.packs for pair in pack.pairs})

    def direct(self, source: str, target: str) -> TranslationPack | None:
        """The pack for the pair: a single-pair model (Marian) before a many-to-many one; then higher precision."""
        candidates = [p for p in self.packs if p.serves(source, target)]
        rank = {"fp32": 0, "fp16": 1, "int8": 2}
        candidates.sort(key=lambda p: (len(p.pairs), rank.get(p.precision, 3), p.name))
        return candidates[0] if candidates else None

    def route(self, source: str, target: str) -> Route:
        src, tgt = canonical(source), canonical(target)
        if src == tgt:
            raise ValueError(f"source and target are both {src!r}: nothing to translate")
        pack = self.direct(src, tgt)
        if pack is not None:
            return Route((Step(pack, src, tgt),), f"{src} → {tgt}: {pack.name}")
        if PIVOT not in (src, tgt):
            first, second = self.direct(src, PIVOT), self.direct(PIVOT, tgt)
            if first is not None and second is not None:
                note = (f"{src} → {tgt} via {PIVOT} (no direct {src} → {tgt} pack): "
                        f"{first.name}, then {second.name}")
                log.info("%s", note)
                return Route((Step(first, src, PIVOT), Step(second, PIVOT, tgt)), note)
        available = ", ".join(f"{s}→{t}" for s, t in self.pairs()) or "none"
        where = self.root or default_root()
        legs = {(src, tgt), (src, PIVOT), (PIVOT, tgt)}
        for folder, error in self.unusable.items():
            if _claimed_pairs(folder) & legs:
                raise MissingPairError(f"{src} → {tgt} needs the translation pack {folder.name}, which cannot be "
                                       f"used: {error}") from error
        raise MissingPairError(
            f"no translation pack for {src} → {tgt} in {where} (nor via {PIVOT}); installed pairs: {available}; "
            + HOW_TO_ADD.format(src=src, tgt=tgt, root=where))
