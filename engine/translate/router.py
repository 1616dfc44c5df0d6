"""Translate between any two languages the installed packs cover, directly or through English.

One Translator per pack, loaded on first use and kept; the result says which route it took.
"""

from __future__ import annotations

import dataclasses
import logging
import threading

from engine.errors import PackError
from engine.translate.registry import PairRegistry, Route
from engine.translate.translator import TranslateOptions, Translator

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class RoutedTranslation:
    texts: list[str]
    route: Route

    @property
    def note(self) -> str:
        return self.route.note


class RouteTranslator:
    def __init__(self, registry: PairRegistry, device: str = "auto", threads: int | None = None):
        self.registry, self.device, self.threads = registry, device, threads
        self._loaded: dict[str, Translator] = {}
        # A pack that failed to load fails the same way until it is fixed: said again without re-reading it
        # (verifying a damaged pack hashes its files; a live session asks once per sentence).
        self._failed: dict[str, PackError] = {}
        self._lock = threading.Lock()

    def translator_for(self, pack) -> Translator:
        key = str(pack.path)
        with self._lock:
            if key in self._failed:
                raise self._failed[key]
            if key not in self._loaded:
                try:
                    self._loaded[key] = Translator.load(pack, self.device, self.threads)
                except PackError as e:
                    self._failed[key] = e
                    raise
            return self._loaded[key]

    def translate(self, texts: list[str], source: str, target: str, beam_size: int | None = None,
                  options: TranslateOptions = TranslateOptions()) -> RoutedTranslation:
        """Raises MissingPairError (naming the installed pairs and how to add one) when no route exists."""
        route = self.registry.route(source, target)
        if route.pivoted:
            log.info("%s", route.note)
        current = list(texts)
        for step in route.steps:
            current = self.translator_for(step.pack).translate(current, step.source, step.target, beam_size, options)
        return RoutedTranslation(current, route)
