"""Language codes: what users type (ISO 639-1, ``de``) and what packs call them.

NLLB-200 names languages ``deu_Latn``, M2M100 ``__de__`` (stored as ``de``), multi-target Marian
models ``>>deu<<`` (stored as ``deu``) or ``>>de<<``. ``canonical`` turns any of these into the
two-letter code where one exists, so pairs compare equal across packs.
"""

from __future__ import annotations

NLLB = {
    "af": "afr_Latn", "ar": "arb_Arab", "bg": "bul_Cyrl", "bn": "ben_Beng", "ca": "cat_Latn", "cs": "ces_Latn",
    "cy": "cym_Latn", "da": "dan_Latn", "de": "deu_Latn", "el": "ell_Grek", "en": "eng_Latn", "es": "spa_Latn",
    "et": "est_Latn", "eu": "eus_Latn", "fa": "pes_Arab", "fi": "fin_Latn", "fr": "fra_Latn", "ga": "gle_Latn",
    "gl": "glg_Latn", "he": "heb_Hebr", "hi": "hin_Deva", "hr": "hrv_Latn", "hu": "hun_Latn", "hy": "hye_Armn",
    "id": "ind_Latn", "is": "isl_Latn", "it": "ita_Latn", "ja": "jpn_Jpan", "ka": "kat_Geor", "kk": "kaz_Cyrl",
    "ko": "kor_Hang", "lt": "lit_Latn", "lv": "lvs_Latn", "mk": "mkd_Cyrl", "ms": "zsm_Latn", "mt": "mlt_Latn",
    "nb": "nob_Latn", "nl": "nld_Latn", "nn": "nno_Latn", "pl": "pol_Latn", "pt": "por_Latn", "ro": "ron_Latn",
    "ru": "rus_Cyrl", "sk": "slk_Latn", "sl": "slv_Latn", "sq": "als_Latn", "sr": "srp_Cyrl", "sv": "swe_Latn",
    "sw": "swh_Latn", "ta": "tam_Taml", "th": "tha_Thai", "tl": "tgl_Latn", "tr": "tur_Latn", "uk": "ukr_Cyrl",
    "ur": "urd_Arab", "vi": "vie_Latn", "zh": "zho_Hans",
}
_NLLB_BACK = {v: k for k, v in NLLB.items()}
_ISO3 = {v[:3]: k for k, v in NLLB.items()} | {"ger": "de", "fre": "fr", "chi": "zh", "cmn": "zh", "dut": "nl",
                                               "gre": "el", "per": "fa", "nor": "nb", "arb": "ar", "ara": "ar",
                                               "zsm": "ms", "msa": "ms", "lav": "lv", "sqi": "sq", "swa": "sw"}
NO_SPACE_SCRIPTS = ("zh", "ja", "th")  # segments of these targets are joined without a space


def canonical(code: str) -> str:
    """``de``, ``deu``, ``deu_Latn``, ``__de__``, ``>>deu<<`` → ``de`` (unknown codes come back lower-cased)."""
    c = code.strip().strip("_").removeprefix(">>").removesuffix("<<")
    if c in _NLLB_BACK:
        return _NLLB_BACK[c]
    low = c.lower()
    if low in _ISO3:
        return _ISO3[low]
    return low.replace("-", "_") if "_" not in c else c


def joiner(target: str) -> str:
    return "" if canonical(target) in NO_SPACE_SCRIPTS else " "
