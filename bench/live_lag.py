"""Live lag as a user sees it: `parley live` listening to what the computer plays, through PulseAudio.

    .venv/bin/python bench/live_lag.py [--configs default no-pause-final step-0.5] [--inputs en es]
                                       [--out docs/results/live_lag.json]

For each input and configuration, one run: a PulseAudio server with a null sink (started here if none is
running), `parley live --device <sink>.monitor --partials [--translate-to L]` as a child process, and the
input wav played into the sink with `paplay` (resampled to the sink's 48 kHz first, as a film's audio would
be: see at_sink_rate). Every line Parley prints is timestamped as it is read. Per
run it reports:

- sentence-final lag: the committed line that holds a sentence's end is printed − the moment the sentence's
  last word ended in the audio (time 0 = paplay started, so the sound server's latency counts too);
- translation lag: the same for its `→` line;
- word commit lag (each committed fragment, `+` lines) and first-partial lag (the first tentative text of an
  utterance that follows a pause − the end of its first word);
- WER of the committed text against the script, beside the offline WER of the same model on the same wav;
  chrF of the translations against references written for them; CPU RTF (the child's CPU time / audio time);
  dropped audio blocks; and every line Parley printed, with the time it was read (``printed`` in the JSON).

(Over 400 lines: the inputs, the run through PulseAudio and the analysis of what was printed belong to this one
measurement and are used nowhere else.)

Where each sentence and word ends in the audio comes from an offline pass of the same model (word
timestamps, beam 5) over the same wav. The inputs: English — the recorded human speech of the moonshine-voice
wheel (Beckett, Dickens) and 30 espeak-ng sentences with 1 s pauses (≈ 3.4 min); Spanish — 16 espeak-ng
sentences with English references (bench/clips.py's ten and six here, ≈ 72 s), translated into English; en-pt —
the English input with `--translate-to pt` (the Bergamot en→pt pack).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.append(str(ROOT / "tests"))

from bench import clips  # noqa: E402
from bench import record  # noqa: E402
from engine.audio.decode import load_audio  # noqa: E402

SR = 16000
# Spanish sentences of this bench's own, with English references, beside bench/clips.py's ten.
MORE_SPANISH = (
    ("La reunión empieza a las diez de la mañana.", "The meeting starts at ten in the morning."),
    ("Mi madre cocina sopa de verduras los domingos.", "My mother cooks vegetable soup on Sundays."),
    ("El tren llega tarde porque nieva en la montaña.", "The train is late because it is snowing in the mountains."),
    ("Tenemos que terminar el proyecto antes del viernes.", "We have to finish the project before Friday."),
    ("¿Dónde está la farmacia más cercana?", "Where is the nearest pharmacy?"),
    ("Ayer compré dos camisas azules en el mercado.", "Yesterday I bought two blue shirts at the market."),
)
CONFIGS = {  # name → extra `parley live` arguments
    "default": [],
    "no-pause-final": ["--no-pause-final"],  # the behaviour before: LocalAgreement and the 2 s pause only
    "step-0.5": ["--step", "0.5"],
    "first-step-0.3": ["--first-step", "0.3"],
    "no-first-draft": ["--no-first-draft"],
    "final-beam-2": ["--final-beam", "2"],
    "final-beam-3": ["--final-beam", "3"],
    # the finalising decode searched again with beam 5 when unsure of a word, if the sentence is still final in time
    "final-beam-5": ["--final-beam", "5"],
    "final-beam-always": ["--final-beam", "5", "--final-beam-below", "1"],  # ... at every pause
    # searched again when unsure whatever the search costs (the rule that searches only in time never binds)
    "final-beam-5-unguarded": ["--final-beam", "5", "--final-beam-within", "60"],
    "no-hold": ["--hold", "0"],  # commit what two decodes agree on at once, also inside a short utterance
}
_LINE = re.compile(r"^\[(\d+):(\d+\.\d)\s*→\s*(\d+):(\d+\.\d)\]\s*(.*)$")


@dataclasses.dataclass
class Printed:
    at_s: float  # when it was read, seconds after paplay started
    stream: str  # stdout / stderr
    text: str


@dataclasses.dataclass
class Input:
    name: str
    path: Path
    language: str
    script: str  # what is said (WER reference)
    translate_to: str | None = None
    references: list[str] = dataclasses.field(default_factory=list)  # English references, for chrF


def build_inputs(cache: Path, which: list[str]) -> list[Input]:
    import soundfile as sf

    out = []
    if "en" in which:
        long = clips.long_english(cache)
        human = clips.human_clips(cache)
        named = {p.stem: p for p in human}
        parts, script = [clips.silence(0.5)], []
        for name in ("beckett", "two_cities"):
            parts += [load_audio(named[name]), clips.silence(1.5)]
            script.append(clips.HUMAN_TRANSCRIPTS[name])
        parts.append(load_audio(long.path))
        script.append(long.text)
        path = cache / "live-lag-en.wav"
        sf.write(str(path), np.concatenate(parts), SR, subtype="PCM_16")
        out.append(Input("en", path, "en", " ".join(script)))
    if "en-pt" in which:  # the same English, each sentence into Portuguese by the Bergamot text pack
        english = build_inputs(cache, ["en"])[0]
        out.append(dataclasses.replace(english, name="en-pt", translate_to="pt"))
    if "es" in which:
        chosen = [c for c in clips.clips("es") if c.reference_en]
        chosen += [clips.Clip(f"lag-es{i:02d}", "es", text, ref) for i, (text, ref) in enumerate(MORE_SPANISH)]
        long = clips.concat_clips(chosen, cache / "live-lag-es.wav", cache, pause_s=1.0)
        out.append(Input("es", long.path, "es", long.text, translate_to="en",
                         references=[c.reference_en for c in chosen]))
    return out


def offline_words(model, path: Path, language: str, beam_size: int = 5):
    """(words with their times, text) of an offline pass; kept beside the wav for a later --analyse-only."""
    from engine.events import Word
    from engine.whisper import TranscribeOptions

    cached = path.with_name(f"{path.stem}.offline-beam{beam_size}.json")
    if cached.exists() and cached.stat().st_mtime >= path.stat().st_mtime:
        data = json.loads(cached.read_text())
        return [Word(*w) for w in data["words"]], data["text"]
    t = model.transcribe(str(path), TranscribeOptions(language=language, beam_size=beam_size, word_timestamps=True))
    words = [w for s in t.segments for w in s.words]
    cached.write_text(json.dumps({"words": [dataclasses.astuple(w) for w in words], "text": t.text}))
    return words, t.text


def pulse():
    """(environment for clients, monitor name, the server process or None)."""
    from conftest_pulse import SINK, _ensure_sink, _pactl, _start

    if os.environ.get("PULSE_SERVER") and _pactl({}, "info").returncode == 0:
        env = {"PULSE_SERVER": os.environ["PULSE_SERVER"]}
        proc = None
    else:
        proc, env = _start(Path(tempfile.mkdtemp(prefix="parley-lag-pulse-")))
    _ensure_sink(env)
    return env, SINK, proc


SINK_RATE = 48000  # tests/conftest_pulse.py's null sink


def at_sink_rate(path: Path) -> Path:
    """The wav resampled to the sink's rate (engine.audio's resampler, cached beside it): played at 16 kHz, the
    sound server upsamples it with its own default resampler (speex-float-1 here), which dulls 4–8 kHz and
    added a WER point on the English input (the captured audio fed to the recogniser directly: 5.75 % from
    the 16 kHz wav, 4.72 % from this one). A film or call is 44.1/48 kHz already: the harness should not
    degrade what a user's machine would not."""
    import soundfile as sf

    from engine.audio.decode import resample

    out = path.with_name(f"{path.stem}.{SINK_RATE // 1000}k.wav")
    if not out.exists() or out.stat().st_mtime < path.stat().st_mtime:
        sf.write(out, resample(load_audio(path), 16000, SINK_RATE), SINK_RATE, subtype="FLOAT")
    return out


def run_once(inp: Input, config: list[str], env: dict, sink: str, model_args: list[str]) -> tuple[list[Printed], dict]:
    cmd = [sys.executable, "-m", "engine", "live", "--device", f"{sink}.monitor", "--language", inp.language,
           "--partials", *model_args, *config]
    if inp.translate_to:
        cmd += ["--translate-to", inp.translate_to]
    child_env = {**os.environ, **env, "PYTHONUNBUFFERED": "1"}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    proc = subprocess.Popen(cmd, cwd=ROOT, env=child_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, bufsize=1)
    lines: list[Printed] = []
    origin = [None]
    ready = threading.Event()

    def read(stream, name):
        for raw in stream:
            now = time.monotonic()
            if "[listening" in raw:
                ready.set()
            lines.append(Printed(now, name, raw.rstrip("\n")))

    readers = [threading.Thread(target=read, args=(proc.stdout, "out"), daemon=True),
               threading.Thread(target=read, args=(proc.stderr, "err"), daemon=True)]
    for r in readers:
        r.start()
    if not ready.wait(120):
        proc.kill()
        raise RuntimeError("parley live did not start listening: " + "\n".join(p.text for p in lines[-10:]))
    wav = at_sink_rate(inp.path)  # (before the clock starts: its first call imports the resampler, ~0.7 s)
    time.sleep(1.0)  # the capture stream is running
    origin[0] = time.monotonic()
    subprocess.run(["paplay", f"--device={sink}", str(wav)], env=child_env, check=True)
    played_s = time.monotonic() - origin[0]  # shorter than the wav: playback was cut off, the run is not valid
    time.sleep(5.0)  # the last sentence and its translation
    proc.send_signal(2)  # Ctrl-C: stop listening, finish what was heard
    proc.wait(120)
    for r in readers:
        r.join(5)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    for p in lines:
        p.at_s -= origin[0]
    return lines, {"cpu_s": cpu, "returncode": proc.returncode, "played_s": played_s}


def _secs(m: str, s: str) -> float:
    return int(m) * 60 + float(s)


def analyse(inp: Input, lines: list[Printed], extra: dict, words, offline_text: str, audio_s: float) -> dict:
    from engine.metrics import wer

    committed = []  # (printed at, start, end, text) — sentence lines on stdout
    fragments = []  # (printed at, start, end) — "+" lines on stderr
    translations = []  # (printed at, text, index of the committed line before it)
    partials = []  # (printed at, text)
    for p in lines:
        if p.stream == "out":
            m = _LINE.match(p.text)
            if m:
                committed.append((p.at_s, _secs(*m.group(1, 2)), _secs(*m.group(3, 4)), m.group(5)))
            elif p.text.strip().startswith("→") and not p.text.strip()[1:].strip().startswith("(not translated"):
                translations.append((p.at_s, p.text.strip()[1:].strip(), len(committed) - 1))
        elif p.text.startswith("+ "):
            m = _LINE.match(p.text[2:])
            if m:
                fragments.append((p.at_s, _secs(*m.group(1, 2)), _secs(*m.group(3, 4))))
        elif p.text.startswith("~ "):
            partials.append((p.at_s, p.text[2:].strip()))
    ends = [w.end_s for w in words]
    # The stream clock counts captured samples (a monitor of an idle sink may deliver none before playback);
    # the wav's starts with paplay. The offset between them: the one that puts the line ends closest to word
    # ends (a sentence line ends where a word does).
    offset = 0.0
    if committed and ends:
        line_ends = np.array([e for _, _, e, _ in committed])
        word_ends = np.array(ends)

        def misfit(o: float) -> float:
            return float(np.median(np.min(np.abs(line_ends[:, None] - o - word_ends[None, :]), axis=1)))

        # The monitor delivers samples once playback starts, so the offset is the sound path's latency: small.
        offset = min(np.arange(-0.5, 1.5, 0.02), key=misfit)

    sentence_ends = _sentence_ends(inp.script, words)  # [(index of its last word in the script, end in the wav)]
    holders = _lines_holding(inp.script, [c[3] for c in committed])
    # Each printed line is one sentence with at most one translation, printed after it: the k-th "→" line
    # belongs to the oldest line printed before it that has none yet.
    translation_of: dict[int, tuple] = {}
    for t in translations:
        waiting = [k for k in range(t[2] + 1) if k not in translation_of]
        if waiting:
            translation_of[waiting[0]] = t
    final_lag, trans_lag, untranslated = [], [], 0
    for index, end in sentence_ends:
        holder = holders.get(index)
        if holder is None:
            continue
        final_lag.append(committed[holder][0] - end)
        t = translation_of.get(holder)
        if t is not None:
            trans_lag.append(t[0] - end)
        elif inp.translate_to:
            untranslated += 1
    word_lag = []
    for at, s, e in fragments:
        inside = [x for x in ends if s - offset - 0.05 <= x <= e - offset + 0.05]
        word_lag += [at - x for x in inside]
    # First partials: utterances are words that follow a pause of at least 0.5 s.
    first_lag = []
    for i, w in enumerate(words):
        if i and w.start_s - words[i - 1].end_s < 0.5:
            continue
        shown = next((at for at, text in partials if at >= w.start_s and text), None)
        if shown is not None:
            first_lag.append(shown - w.end_s)

    def stats(xs):
        if not xs:
            return None
        xs = sorted(xs)
        return {"n": len(xs), "p50": round(float(np.percentile(xs, 50)), 2),
                "p90": round(float(np.percentile(xs, 90)), 2), "max": round(max(xs), 2)}

    streamed = " ".join(c[3] for c in committed)
    dropped = re.findall(r"(\d+) audio blocks dropped", "\n".join(p.text for p in lines))
    searches = re.findall(r"(\d+) searched at a pause \((\d+) left greedy", "\n".join(p.text for p in lines))
    result = {
        "sentence_final_lag_s": stats(final_lag), "translation_lag_s": stats(trans_lag),
        "word_commit_lag_s": stats(word_lag), "first_partial_lag_s": stats(first_lag),
        "wer_streamed": round(100 * wer(inp.script, streamed), 2),
        "wer_offline": round(100 * wer(inp.script, offline_text), 2),
        "cpu_rtf": round(extra["cpu_s"] / audio_s, 3), "dropped_blocks": int(dropped[-1]) if dropped else None,
        # finalising decodes searched again with the beam, and unsure ones the in-time rule left greedy
        "searches": int(searches[-1][0]) if searches else None,
        "searches_skipped": int(searches[-1][1]) if searches else None,
        "sentences": len(sentence_ends), "sentences_untranslated": untranslated, "lines": len(committed), "stream_offset_s": round(offset, 3),
        "returncode": extra["returncode"], "played_s": round(extra.get("played_s", audio_s), 1), "text": streamed,
        # every line Parley printed, as read (seconds after paplay started, stdout/stderr, the text): what a
        # reader of this report needs to see why a phrase went missing or a sentence came late
        "printed": [[round(p.at_s, 3), p.stream, p.text] for p in lines],
    }
    if inp.references:
        import sacrebleu

        hyp = " ".join(t[1] for t in translations)
        result["chrf"] = round(sacrebleu.corpus_chrf([hyp], [[" ".join(inp.references)]]).score, 1)
        result["translations"] = [t[1] for t in translations]
    errors = [p.text for p in lines if "error" in p.text.lower()]
    if errors:
        result["errors"] = errors[:5]
    return result


def _sentence_ends(script: str, words) -> list[float]:
    """Where each sentence of the script ends in the audio: its last word matched to a word of the offline
    pass (whose times are known; its own punctuation is not reliable), by aligning the two word sequences.
    A sentence whose last word the offline pass got wrong is left out."""
    import difflib

    from engine.metrics import normalize_text

    ref = script.split()
    ref_norm = [normalize_text(t) for t in ref]
    hyp_norm = [normalize_text(w.text) for w in words]
    matched: dict[int, int] = {}
    for block in difflib.SequenceMatcher(a=ref_norm, b=hyp_norm, autojunk=False).get_matching_blocks():
        for k in range(block.size):
            matched[block.a + k] = block.b + k
    ends = [i for i, t in enumerate(ref) if t.rstrip("\"'”’»)").endswith((".", "?", "!", "…"))]
    return [(i, words[matched[i]].end_s) for i in ends if i in matched]


def _lines_holding(script: str, lines: list[str]) -> dict[int, int]:
    """For each word of the script, the printed line that holds it (or holds the nearest streamed word
    aligned before it, within 3 words), by aligning the words: no clock involved."""
    import difflib

    from engine.metrics import normalize_text

    ref = [normalize_text(t) for t in script.split()]
    hyp, owner = [], []
    for k, line in enumerate(lines):
        for t in line.split():
            hyp.append(normalize_text(t))
            owner.append(k)
    matched: dict[int, int] = {}
    for block in difflib.SequenceMatcher(a=ref, b=hyp, autojunk=False).get_matching_blocks():
        for k in range(block.size):
            matched[block.a + k] = owner[block.b + k]
    out = {}
    for i in range(len(ref)):
        for back in range(4):
            if i - back in matched:
                out[i] = matched[i - back]
                break
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--configs", nargs="+", default=["default", "no-pause-final", "step-0.5"], choices=list(CONFIGS))
    ap.add_argument("--inputs", nargs="+", default=["en", "es"], choices=["en", "es", "en-pt"])
    ap.add_argument("--model", default=None, help="pack folder or name (default: parley's default, int8)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--cache", type=Path, default=None, help="where the inputs are synthesised (default: a temp folder)")
    ap.add_argument("--analyse-only", action="store_true",
                    help="recompute the report from the lines a run kept in --cache (no new runs)")
    ap.add_argument("--repeat", type=int, default=1,
                    help="run each input and setting this many times (streamed WER moves from run to run)")
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "results" / "live_lag.json")
    args = ap.parse_args(argv)

    from engine.packs.catalogue import DEFAULT_MODEL
    from engine.packs.install import ensure_pack
    from engine.whisper import WhisperModel

    cache = args.cache or Path(tempfile.mkdtemp(prefix="parley-lag-"))
    cache.mkdir(parents=True, exist_ok=True)
    inputs = build_inputs(cache, args.inputs)
    pack = ensure_pack(args.model or DEFAULT_MODEL, "int8", "cpu")
    model_args = ["--model", str(pack), "--threads", str(args.threads), "--compute", "cpu"]
    model = WhisperModel.load(pack, device="cpu", threads=args.threads)
    truth = {inp.name: offline_words(model, inp.path, inp.language) for inp in inputs}
    greedy = {inp.name: offline_words(model, inp.path, inp.language, beam_size=1)[1] for inp in inputs}
    del model
    env, sink, server = pulse() if not args.analyse_only else ({}, "", None)
    results = []
    try:
        for inp in inputs:
            audio_s = load_audio(inp.path).size / SR
            for name, run in [(n, k) for n in args.configs for k in range(1, args.repeat + 1)]:
                # for analysing a run again without re-running it
                raw = cache / f"lines-{inp.name}-{name}{'' if run == 1 else f'-{run}'}.json"
                if args.analyse_only:
                    if not raw.exists():
                        continue  # not run for this input
                    kept = json.loads(raw.read_text())
                    lines, extra = [Printed(**p) for p in kept[:-1]], kept[-1]
                else:
                    print(f"== {inp.name} ({audio_s:.0f} s), {name}" + (f", run {run}" if args.repeat > 1 else ""),
                          file=sys.stderr, flush=True)
                    lines, extra = run_once(inp, CONFIGS[name], env, sink, model_args)
                    raw.write_text(json.dumps([dataclasses.asdict(p) for p in lines] + [extra], ensure_ascii=False))
                words, offline_text = truth[inp.name]
                r = analyse(inp, lines, extra, words, offline_text, audio_s)
                r["wer_offline_greedy"] = round(100 * clips.wer(inp.script, greedy[inp.name]), 2)
                r.update(input=inp.name, config=name, audio_s=round(audio_s, 1), translate_to=inp.translate_to)
                if args.repeat > 1:
                    r["run"] = run
                results.append(r)
                print(summary_line(r), file=sys.stderr, flush=True)
    finally:
        if server is not None:
            server.terminate()
    report = {"date": time.strftime("%Y-%m-%d %H:%M"), "command": "bench/live_lag.py " + " ".join(argv or sys.argv[1:]),
              "machine": record.machine(), "versions": record.versions(),
              "model": str(Path(pack).name), "threads": args.threads, "runs": results}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1, ensure_ascii=False))
    args.out.with_suffix(".md").write_text(markdown(report))
    print(markdown(report))
    return 0


def summary_line(r: dict) -> str:
    def f(key):
        s = r.get(key)
        return "–" if not s else f"{s['p50']:.2f}/{s['p90']:.2f}/{s['max']:.2f}"

    return (f"{r['input']} {r['config']}: sentence-final {f('sentence_final_lag_s')}  translation "
            f"{f('translation_lag_s')}  first partial {f('first_partial_lag_s')}  word commit "
            f"{f('word_commit_lag_s')}  WER {r['wer_streamed']} (offline {r['wer_offline']})"
            + (f"  chrF {r['chrf']}" if "chrf" in r else "") + f"  RTF {r['cpu_rtf']}  searched {r.get('searches')} (left greedy {r.get('searches_skipped')})"
            + f"  dropped {r['dropped_blocks']}")


def markdown(report: dict) -> str:
    def f(s):
        return "–" if not s else f"{s['p50']:.2f} / {s['p90']:.2f} / {s['max']:.2f}"

    rows = ["| input | config | sentence-final lag p50 / p90 / max | translation lag p50 / p90 / max | "
            "first partial p50 / p90 / max | word commit p50 / p90 / max | WER streamed (offline greedy / beam 5) | chrF | "
            "CPU s per audio s | searched at a pause (left greedy) | dropped |",
            "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in report["runs"]:
        rows.append(f"| {r['input']} ({r['audio_s']:.0f} s{', → ' + r['translate_to'] if r['translate_to'] else ''}) "
                    f"| {r['config']}{' (run %d)' % r['run'] if 'run' in r else ''} | {f(r['sentence_final_lag_s'])} | {f(r['translation_lag_s'])} | "
                    f"{f(r['first_partial_lag_s'])} | {f(r['word_commit_lag_s'])} | {r['wer_streamed']} % "
                    f"({r.get('wer_offline_greedy', '–')} / {r['wer_offline']} %) | {r.get('chrf', '–')} | {r['cpu_rtf']} | "
                    f"{r.get('searches', '–')} ({r.get('searches_skipped', '–')}) | {r['dropped_blocks']} |")
    head = (f"Live lag through PulseAudio, {report['date']}, {report['machine']['cores']} cores "
            f"({report['machine']['cpu']}), {report['model']}, {report['threads']} threads. "
            f"`{report['command']}`\n\n")
    return head + "\n".join(rows) + "\n"


if __name__ == "__main__":
    sys.exit(main())
