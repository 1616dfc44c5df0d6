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
    def into(cls, target: str, device: str = "auto", threads: int | None = None) -> InstalledTextTranslator:
        """The installed packs, checked to translate into ``target`` from somewhere (English at least):
        MissingPairError, naming the installed pairs and how to add one, when none does."""
        registry = PairRegistry.scan()
        if not any(t == canonical(target) for _, t in registry.pairs()):
            registry.route("en", target)  # raises MissingPairError with the installed pairs
            raise MissingPairError(f"no installed translation pack translates into {target!r}")
        return cls(registry, device, threads)

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
