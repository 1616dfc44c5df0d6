"""The installed text packs as one translator for the live and file stages: ``(text, source, target) -> text``
plus ``route(source, target)`` ("direct", "pivot" through English text, or None), so a caller can say
"via English" and, where no text route from the spoken language exists, translate the speech into English
first."""

from __future__ import annotations

import logging

from engine.translate.languages import canonical
from engine.translate.registry import MissingPairError, PairRegistry
from engine.translate.router import RouteTranslator

log = logging.getLogger(__name__)


class InstalledTextTranslator:
    def __init__(self, registry: PairRegistry, device: str = "auto", threads: int | None = None):
        self.registry = registry
        self.router = RouteTranslator(registry, device, threads)

    @classmethod
    def into(cls, target: str, device: str = "auto", threads: int | None = None, source: str | None = None
             ) -> InstalledTextTranslator:
        """The installed packs, checked to translate into ``target`` from somewhere (English at least) and,
        when the spoken language is known (``source``), from it: directly, through English text, or from
        English after Whisper's speech translation. MissingPairError, naming the installed pairs and how to
        add one, when they cannot."""
        registry = PairRegistry.scan()
        if not any(t == canonical(target) for _, t in registry.pairs()):
            registry.route("en", target)  # raises MissingPairError with the installed pairs
            raise MissingPairError(f"no installed translation pack translates into {target!r}")
        translator = cls(registry, device, threads)
        if source and canonical(source) != canonical(target) and translator.route(source, target) is None \
                and translator.route("en", target) is None:
            registry.route(source, target)  # raises MissingPairError naming the pairs (or a damaged pack)
        return translator

    def why_not(self, source: str | None, target: str, error: Exception) -> str:
        """A row's short reason: "no fr→de pack; installed: en→de" for a missing pair, else the error itself
        (a damaged pack names its file)."""
        if isinstance(error, MissingPairError) and error.__cause__ is None:
            installed = ", ".join(f"{s}→{t}" for s, t in self.registry.pairs()) or "none"
            return f"no {source or '?'}→{target} pack; installed: {installed}"
        return str(error)

    def route(self, source: str, target: str) -> str | None:
        try:
            return "pivot" if self.registry.route(source, target).pivoted else "direct"
        except MissingPairError:
            return None

    def __call__(self, text: str, source: str | None, target: str) -> str:
        routed = self.router.translate([text], source or "en", target)
        if routed.route.pivoted:
            log.info("%s", routed.note)
        return routed.texts[0]
