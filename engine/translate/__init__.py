"""Text translation with Marian (OPUS-MT), Bergamot (Firefox Translations), NLLB-200 and M2M100 packs on
onnxruntime.

    from engine.translate import Translator
    Translator.load(pack_dir).translate(["Hello."], source="en", target="de")

or, choosing the pack (and pivoting through English) from the installed ones:

    RouteTranslator(PairRegistry.scan()).translate(["Bonjour."], "fr", "de").texts
"""

from engine.packs.hub import download_pack
from engine.translate.pack import TranslationPack
from engine.translate.registry import MissingPairError, PairRegistry, Route
from engine.translate.router import RoutedTranslation, RouteTranslator
from engine.translate.translator import TranslateOptions, Translator

__all__ = ["MissingPairError", "PairRegistry", "Route", "RoutedTranslation", "RouteTranslator", "TranslateOptions",
           "TranslationPack", "Translator", "download_pack"]
