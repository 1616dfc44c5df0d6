"""A speech corpus for tests and benchmarks: sentences spoken by espeak-ng, recorded human speech
from the ``moonshine-voice`` wheel, silence and noise. Not part of the installed engine; its scores
(``wer``, ``cer``, ``normalize_text``) are engine.metrics', re-exported here for the callers that score
a clip.

espeak-ng is robotic but deterministic and everywhere (``apt install espeak-ng``); the human clips
keep the benchmarks honest about real voices.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path
from typing import Sequence

import numpy as np

from engine.audio.decode import SAMPLE_RATE, load_audio
from engine.errors import ParleyError
from engine.metrics import cer, normalize_text, wer  # noqa: F401 - re-exported for the corpus' users

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class Clip:
    id: str
    language: str  # Whisper's code: en, de, fr, es, zh, ja
    text: str  # what is said, as it is written
    reference_en: str  # an English translation (the text itself for English)
    spoken: str | None = None  # what espeak-ng is given when it cannot read ``text`` (pinyin, kana)


def _c(id: str, language: str, text: str, reference_en: str | None = None, spoken: str | None = None) -> Clip:
    return Clip(id, language, text, reference_en if reference_en is not None else text, spoken)


CLIPS: tuple[Clip, ...] = (
    _c("en01", "en", "The train to the city leaves every morning at a quarter past seven."),
    _c("en02", "en", "Please remember to water the plants while I am away on holiday."),
    _c("en03", "en", "The weather service expects heavy rain and strong winds along the coast tonight."),
    _c("en04", "en", "She opened the window and listened to the birds in the garden."),
    _c("en05", "en", "Our team will present the new budget to the council next week."),
    _c("en06", "en", "Could you tell me where the nearest pharmacy is?"),
    _c("en07", "en", "The museum is closed on Mondays, but the park stays open all day."),
    _c("en08", "en", "Scientists have found a new species of frog in the mountain forests."),
    _c("en09", "en", "He forgot his umbrella and walked home in the rain."),
    _c("en10", "en", "The government announced a plan to build more affordable housing in the capital."),
    _c("en11", "en", "I would like a cup of coffee with milk and no sugar, please."),
    _c("en12", "en", "The children played football in the street until it got dark."),
    _c("en13", "en", "Prices for fresh vegetables rose sharply after the long summer drought."),
    _c("en14", "en", "My grandmother taught me how to bake bread when I was young."),
    _c("en15", "en", "The meeting has been moved to Thursday afternoon because the manager is away."),
    _c("en16", "en", "Thousands of people gathered in the square to celebrate the national holiday."),
    _c("en17", "en", "Turn left at the bank and the library is on your right."),
    _c("en18", "en", "The company said its profits were higher than analysts had expected."),
    _c("en19", "en", "We watched the sun go down behind the hills from the top of the tower."),
    _c("en20", "en", "The hospital is looking for volunteers to help in the evenings."),
    _c("en21", "en", "A small fire in the kitchen was put out quickly by the people next door."),
    _c("en22", "en", "Learning a new language takes time, patience and a lot of practice."),
    _c("en23", "en", "The bridge will be closed for repairs during the whole of next month."),
    _c("en24", "en", "He reads the newspaper every morning before he goes to work."),
    _c("en25", "en", "The orchestra played to a full concert hall on Saturday night."),
    _c("en26", "en", "Doctors advise drinking plenty of water during hot weather."),
    _c("en27", "en", "The old lighthouse on the island has been turned into a small hotel."),
    _c("en28", "en", "Farmers in the north are worried about the late spring frost."),
    _c("en29", "en", "Can you send me the report before the end of the day?"),
    _c("en30", "en", "The election results will be announced early tomorrow morning."),
    _c("de01", "de", "Der Zug nach Berlin hat heute leider eine halbe Stunde Verspätung.",
       "Unfortunately, the train to Berlin is half an hour late today."),
    _c("de02", "de", "Ich möchte gern ein Zimmer für zwei Nächte reservieren.",
       "I would like to book a room for two nights."),
    _c("de03", "de", "Das Wetter soll am Wochenende sonnig und warm werden.",
       "The weather is supposed to be sunny and warm at the weekend."),
    _c("de04", "de", "Meine Schwester arbeitet als Ärztin in einem großen Krankenhaus.",
       "My sister works as a doctor in a large hospital."),
    _c("de05", "de", "Die Regierung will mehr Geld in Schulen und Universitäten investieren.",
       "The government wants to invest more money in schools and universities."),
    _c("de06", "de", "Wir treffen uns morgen Abend vor dem Kino am Marktplatz.",
       "We are meeting tomorrow evening in front of the cinema on the market square."),
    _c("de07", "de", "Kannst du mir bitte sagen, wie spät es ist?",
       "Can you please tell me what time it is?"),
    _c("de08", "de", "Im Herbst fallen die Blätter von den Bäumen im Park.",
       "In autumn the leaves fall from the trees in the park."),
    _c("de09", "de", "Der Arzt hat mir geraten, mehr Wasser zu trinken.",
       "The doctor advised me to drink more water."),
    _c("de10", "de", "Am Samstag kaufen wir auf dem Markt frisches Obst und Gemüse.",
       "On Saturday we buy fresh fruit and vegetables at the market."),
    _c("fr01", "fr", "Je voudrais un café et un croissant, s'il vous plaît.",
       "I would like a coffee and a croissant, please."),
    _c("fr02", "fr", "Le musée est fermé le lundi mais ouvert tous les autres jours.",
       "The museum is closed on Mondays but open on all other days."),
    _c("fr03", "fr", "Il pleut depuis ce matin et les rues sont presque vides.",
       "It has been raining since this morning and the streets are almost empty."),
    _c("fr04", "fr", "Le gouvernement a présenté hier un nouveau projet de loi sur l'énergie.",
       "Yesterday the government presented a new bill on energy."),
    _c("fr05", "fr", "Nous partons en vacances à la mer au mois d'août.",
       "We are going on holiday to the seaside in August."),
    _c("fr06", "fr", "Pouvez-vous m'indiquer le chemin de la gare, s'il vous plaît ?",
       "Can you show me the way to the station, please?"),
    _c("fr07", "fr", "Ma grand-mère prépare toujours une soupe aux légumes le dimanche.",
       "My grandmother always makes vegetable soup on Sundays."),
    _c("fr08", "fr", "Les étudiants attendent les résultats de leurs examens avec impatience.",
       "The students are waiting impatiently for their exam results."),
    _c("fr09", "fr", "Mon frère habite à Lyon depuis trois ans.",
       "My brother has been living in Lyon for three years."),
    _c("fr10", "fr", "Le train pour Paris part dans dix minutes.",
       "The train to Paris leaves in ten minutes."),
    _c("es01", "es", "Mañana vamos a visitar a mis abuelos en el campo.",
       "Tomorrow we are going to visit my grandparents in the countryside."),
    _c("es02", "es", "El restaurante de la esquina tiene la mejor paella de la ciudad.",
       "The restaurant on the corner has the best paella in the city."),
    _c("es03", "es", "¿Sabes a qué hora sale el próximo autobús al aeropuerto?",
       "Do you know what time the next bus to the airport leaves?"),
    _c("es04", "es", "El presidente se reunió ayer con los líderes de la región.",
       "The president met with the leaders of the region yesterday."),
    _c("es05", "es", "Me gusta leer un buen libro antes de dormir.",
       "I like to read a good book before going to sleep."),
    _c("es06", "es", "La temperatura bajará mucho durante la noche en el norte del país.",
       "The temperature will drop sharply during the night in the north of the country."),
    _c("es07", "es", "Mi hermano estudia medicina en una universidad de Madrid.",
       "My brother studies medicine at a university in Madrid."),
    _c("es08", "es", "Por favor, cierra la ventana porque hace mucho frío.",
       "Please close the window because it is very cold."),
    _c("es09", "es", "Los niños juegan en el parque después de la escuela.",
       "The children play in the park after school."),
    _c("es10", "es", "Necesito comprar pan y leche en el supermercado.",
       "I need to buy bread and milk at the supermarket."),
    # espeak-ng's Mandarin voice reads characters badly without its extended dictionary: it is given pinyin.
    _c("zh01", "zh", "今天天气很好，我们去公园散步吧。",
       "The weather is nice today, let's go for a walk in the park.",
       "jin1 tian1 tian1 qi4 hen3 hao3, wo3 men5 qu4 gong1 yuan2 san4 bu4 ba5."),
    _c("zh02", "zh", "我每天早上七点起床，然后去上班。",
       "I get up at seven every morning and then go to work.",
       "wo3 mei3 tian1 zao3 shang5 qi1 dian3 qi3 chuang2, ran2 hou4 qu4 shang4 ban1."),
    _c("zh03", "zh", "这家饭馆的菜很好吃，而且不贵。",
       "The food in this restaurant is delicious, and it is not expensive.",
       "zhe4 jia1 fan4 guan3 de5 cai4 hen3 hao3 chi1, er2 qie3 bu2 gui4."),
    _c("zh04", "zh", "请问，火车站怎么走？",
       "Excuse me, how do I get to the train station?",
       "qing3 wen4, huo3 che1 zhan4 zen3 me5 zou3?"),
    _c("zh05", "zh", "政府宣布将在明年修建一条新的地铁线路。",
       "The government announced that it will build a new subway line next year.",
       "zheng4 fu3 xuan1 bu4 jiang1 zai4 ming2 nian2 xiu1 jian4 yi4 tiao2 xin1 de5 di4 tie3 xian4 lu4."),
    _c("zh06", "zh", "我的弟弟很喜欢踢足球。",
       "My younger brother really likes playing football.",
       "wo3 de5 di4 di5 hen3 xi3 huan5 ti1 zu2 qiu2."),
    _c("zh07", "zh", "明天下午我们要开一个很重要的会。",
       "We have a very important meeting tomorrow afternoon.",
       "ming2 tian1 xia4 wu3 wo3 men5 yao4 kai1 yi2 ge4 hen3 zhong4 yao4 de5 hui4."),
    _c("zh08", "zh", "这本书是我在北京买的。",
       "I bought this book in Beijing.",
       "zhe4 ben3 shu1 shi4 wo3 zai4 bei3 jing1 mai3 de5."),
    _c("zh09", "zh", "外面下雨了，别忘了带伞。",
       "It is raining outside, don't forget to take an umbrella.",
       "wai4 mian4 xia4 yu3 le5, bie2 wang4 le5 dai4 san3."),
    _c("zh10", "zh", "我想买两张去上海的火车票。",
       "I would like to buy two train tickets to Shanghai.",
       "wo3 xiang3 mai3 liang3 zhang1 qu4 shang4 hai3 de5 huo3 che1 piao4."),
    # espeak-ng's Japanese voice reads kana only (kanji come out as "Chinese letter"); the particle は is written わ.
    _c("ja01", "ja", "今日はとても暑いですね。", "It is very hot today, isn't it?", "きょうわ とても あついですね。"),
    _c("ja02", "ja", "駅までの道を教えていただけますか。",
       "Could you tell me the way to the station?",
       "えきまでの みちを おしえて いただけますか。"),
    _c("ja03", "ja", "私は毎朝コーヒーを飲みます。", "I drink coffee every morning.", "わたしわ まいあさ こーひーを のみます。"),
    _c("ja04", "ja", "明日の会議は午後三時から始まります。",
       "Tomorrow's meeting starts at three in the afternoon.",
       "あしたの かいぎわ ごご さんじから はじまります。"),
    _c("ja05", "ja", "この本はとても面白かったです。", "This book was very interesting.", "この ほんわ とても おもしろかったです。"),
    # the particle へ is said え, like は
    _c("ja06", "ja", "週末は家族と海へ行きました。",
       "At the weekend I went to the sea with my family.",
       "しゅうまつわ かぞくと うみえ いきました。"),
    _c("ja07", "ja", "東京の冬はあまり寒くありません。", "Winter in Tokyo is not very cold.",
       "とうきょうの ふゆわ あまり さむく ありません。"),
    _c("ja08", "ja", "駅の前に新しいレストランができました。",
       "A new restaurant has opened in front of the station.",
       "えきの まえに あたらしい れすとらんが できました。"),
    _c("ja09", "ja", "私は毎日日本語を勉強しています。", "I study Japanese every day.",
       "わたしわ まいにち にほんごを べんきょう しています。"),
    _c("ja10", "ja", "すみません、このバスは空港へ行きますか。",
       "Excuse me, does this bus go to the airport?",
       "すみません、この ばすわ くうこうえ いきますか。"),
)

ESPEAK_VOICES = {"en": "en-us", "de": "de", "fr": "fr-fr", "es": "es", "zh": "cmn-latn-pinyin", "ja": "ja"}


def clips(language: str | None = None) -> list[Clip]:
    """The corpus, or the clips of one language."""
    return [c for c in CLIPS if language is None or c.language == language]


def synthesize(clip: Clip, out_dir: str | Path, voice: str | None = None, rate: int = 150) -> Path:
    """Speak ``clip`` with espeak-ng into ``out_dir`` (a WAV at espeak's own rate, 22050 Hz).
    Cached: the file name carries a hash of everything that shapes the sound."""
    voice = voice or ESPEAK_VOICES[clip.language]
    said = clip.spoken or clip.text
    exe = shutil.which("espeak-ng")
    if exe is None:
        raise RuntimeError("espeak-ng is not installed; install it (apt install espeak-ng) to make test speech")
    key = hashlib.sha256(f"{said}\x00{voice}\x00{rate}".encode()).hexdigest()[:16]
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{clip.id}-{key}.wav"
    if not path.exists():
        tmp = path.with_suffix(".tmp.wav")
        subprocess.run([exe, "-v", voice, "-s", str(rate), "-w", str(tmp), said], check=True, capture_output=True)
        tmp.replace(path)  # atomic: a concurrent test never sees half a file
        log.debug("espeak-ng %s -> %s", clip.id, path)
    return path


def silence(seconds: float) -> np.ndarray:
    """Digital silence, 16 kHz float32."""
    return np.zeros(int(round(seconds * SAMPLE_RATE)), dtype=np.float32)


def noise(seconds: float, seed: int = 0, rms: float = 0.05) -> np.ndarray:
    """White Gaussian noise at ``rms`` (0.05 is about -26 dBFS), 16 kHz float32, reproducible."""
    rng = np.random.default_rng(seed)
    return (rms * rng.standard_normal(int(round(seconds * SAMPLE_RATE)))).astype(np.float32)


@dataclasses.dataclass(frozen=True)
class Span:
    clip_id: str
    start_s: float
    end_s: float
    text: str


@dataclasses.dataclass(frozen=True)
class LongClip:
    path: Path  # 16 kHz mono WAV
    text: str  # the clips' texts joined by spaces, in order
    spans: tuple[Span, ...]  # where each sentence is
    duration_s: float


def concat_clips(clip_list: Sequence[Clip], out_path: str | Path, cache_dir: str | Path, pause_s: float = 1.0,
                 rate: int = 150, lead_s: float = 0.5) -> LongClip:
    """Synthesize ``clip_list`` and join it into one 16 kHz WAV with ``pause_s`` of silence between
    sentences (and ``lead_s`` before the first and after the last)."""
    import soundfile as sf

    parts = [silence(lead_s)]
    spans = []
    t = lead_s
    for i, clip in enumerate(clip_list):
        x = load_audio(synthesize(clip, cache_dir, rate=rate))
        spans.append(Span(clip.id, t, t + x.size / SAMPLE_RATE, clip.text))
        parts.append(x)
        t += x.size / SAMPLE_RATE
        gap = silence(pause_s if i + 1 < len(clip_list) else lead_s)
        parts.append(gap)
        t += gap.size / SAMPLE_RATE
    audio = np.concatenate(parts)
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(out_path), audio, SAMPLE_RATE, subtype="PCM_16")
    return LongClip(out_path, " ".join(c.text for c in clip_list), tuple(spans), audio.size / SAMPLE_RATE)


def long_english(out_dir: str | Path, pause_s: float = 1.0) -> LongClip:
    """All English sentences in one file with pauses: a little over two minutes of long-form audio."""
    out_dir = Path(out_dir)
    return concat_clips(clips("en"), out_dir / f"long-en-{pause_s:g}.wav", out_dir, pause_s=pause_s)


# ---------------------------------------------------------------------------------------------
# Recorded human speech (moonshine-voice wheel, MIT licensed package)

MOONSHINE_PACKAGE, MOONSHINE_VERSION = "moonshine-voice", "0.1.5"
MOONSHINE_WHEEL = f"{MOONSHINE_PACKAGE}=={MOONSHINE_VERSION}"
HUMAN_CLIP_NAMES = ("beckett", "two_cities", "endgame_nagg_nell")
# What is said, checked by ear (Whisper base, then corrected from the printed text). endgame_nagg_nell (two
# voices reading Beckett's Endgame, 28 s) has no reference: its text could not be checked against a source.
HUMAN_TRANSCRIPTS = {
    "beckett": "Ever tried. Ever failed. No matter. Try again. Fail again. Fail better.",
    "two_cities": (
        "It was the best of times, it was the worst of times, it was the age of wisdom, it was the age of "
        "foolishness, it was the epoch of belief, it was the epoch of incredulity, it was the season of Light, "
        "it was the season of Darkness, it was the spring of hope, it was the winter of despair, we had "
        "everything before us, we had nothing before us, we were all going direct to Heaven, we were all going "
        "direct the other way; in short, the period was so far like the present period, that some of its "
        "noisiest authorities insisted on its being received, for good or for evil, in the superlative degree "
        "of comparison only."
    ),
}


# sha256 of each clip as the wheel carries it (the same in every platform's wheel, so the clips are pinned
# rather than one platform's wheel file).
HUMAN_CLIP_SHA256 = {
    "beckett": "e5a26b3d29e5b0bc8dbd72c11d16a3808a4ec0ac45b21f12a27d2a2fe5c5ae61",
    "two_cities": "f3348494d77cb74a02862f5e685ed09faf3e75832c5cc5c80703282c2cd8b52e",
    "endgame_nagg_nell": "78f44dc6d3da32ecab0c37f391700f0569f4612b8e0be2ecbaf33e1d3d566474",
}


def moonshine_wheel(folder: str | Path | None = None) -> Path:
    """The moonshine-voice wheel, kept in ``<cache>/sources/moonshine-voice/`` (or ``folder``) and fetched
    there with ``pip download --no-deps`` the first time (setup.sh does it, so tests and benches find it)."""
    from engine.packs.paths import sources_root

    folder = Path(folder) if folder is not None else sources_root() / "moonshine-voice"
    pattern = f"{MOONSHINE_PACKAGE.replace('-', '_')}-{MOONSHINE_VERSION}-*.whl"
    found = sorted(folder.glob(pattern))
    if found:
        return found[0]
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=folder, prefix=".download-") as tmp:
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "-d", tmp,
               MOONSHINE_WHEEL]
        log.info("downloading %s for its recorded speech", MOONSHINE_WHEEL)
        done = subprocess.run(cmd, capture_output=True, text=True)
        got = sorted(Path(tmp).glob(pattern))
        if done.returncode != 0 or not got:
            tail = ((done.stderr or done.stdout).strip().splitlines() or ["(no output)"])[-1]
            raise ParleyError(f"could not download {MOONSHINE_WHEEL} (the recorded speech clips) from PyPI: "
                              f"{tail}. Check the network connection, or put the wheel in {folder}.")
        return Path(shutil.move(str(got[0]), folder / got[0].name))  # a half-downloaded wheel never lands


def human_clips(cache_dir: str | Path, wheel: str | Path | None = None) -> list[Path]:
    """beckett.wav, two_cities.wav and endgame_nagg_nell.wav (at their own rates) extracted into
    ``cache_dir`` from the moonshine-voice wheel (``wheel`` if given, else :func:`moonshine_wheel`), each
    checked against its pinned sha256."""
    cache_dir = Path(cache_dir)
    cache_dir.mkdir(parents=True, exist_ok=True)
    wanted = [cache_dir / f"{name}.wav" for name in HUMAN_CLIP_NAMES]
    if all(p.exists() and _sha256(p.read_bytes()) == HUMAN_CLIP_SHA256[p.stem] for p in wanted):
        return wanted
    wheel = Path(wheel) if wheel is not None else moonshine_wheel()
    try:
        with zipfile.ZipFile(wheel) as z:
            data = {p: z.read(f"moonshine_voice/assets/{p.name}") for p in wanted}
    except (OSError, KeyError, zipfile.BadZipFile) as e:
        raise ParleyError(f"{wheel}: not a {MOONSHINE_WHEEL} wheel with the recorded clips ({e}); "
                          "delete it and run again to fetch it anew") from e
    for path, blob in data.items():
        digest = _sha256(blob)
        if digest != HUMAN_CLIP_SHA256[path.stem]:
            raise ParleyError(f"{wheel}: {path.name} has sha256 {digest}, expected {HUMAN_CLIP_SHA256[path.stem]} "
                              f"({MOONSHINE_WHEEL}); the wheel is corrupt or another version: delete it")
        tmp = path.with_suffix(".tmp")
        tmp.write_bytes(blob)
        tmp.replace(path)
    return wanted


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
