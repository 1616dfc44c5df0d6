"""Live through PulseAudio into Portuguese: English speech played into a null sink, captured from its monitor,
each finished sentence translated by the installed Bergamot en→pt pack (what `parley live --translate-to pt`
and the app's "Translate to: Portuguese" run)."""

from __future__ import annotations

import os
import subprocess
import time

import numpy as np
import pytest
import soundfile as sf

from bergamot_fixtures import installed_pack
from conftest_pulse import pulse_server  # noqa: F401  (fixture)
from engine.audio.capture import list_devices
from engine.events import Error, SentenceEnd, Translated
from engine.jobs import plan_live_job, start_live_job

pytestmark = [pytest.mark.model, pytest.mark.pulse]

SENTENCES = ["The train to the city leaves at nine.", "Please bring a warm coat and an umbrella."]


def _say(text: str, path) -> np.ndarray:
    subprocess.run(["espeak-ng", "-v", "en-us", "-s", "150", "-w", str(path), text], check=True)
    from engine.audio.decode import load_audio

    return load_audio(path)


def test_english_speech_gives_portuguese_sentences(pack_int8, pulse_server, tmp_path):  # noqa: F811
    from engine.whisper import WhisperModel

    installed_pack("en", "pt")
    gap = np.zeros(int(1.5 * 16000), np.float32)
    audio = np.concatenate([gap[:8000]] + [x for i, s in enumerate(SENTENCES)
                                            for x in (_say(s, tmp_path / f"{i}.wav"), gap)])
    wav = tmp_path / "en.wav"
    sf.write(str(wav), audio, 16000, subtype="PCM_16")
    monitors = [d for d in list_devices() if d.pulse_source == pulse_server.monitor]
    assert monitors, f"PortAudio lists no input for {pulse_server.monitor}"
    events = []
    job = start_live_job(WhisperModel.load(pack_int8, threads=2),
                         plan_live_job("en", translate_to="pt", device=monitors[0]), events.append)
    try:
        time.sleep(1.0)  # a monitor stream delivers its first block after a moment
        subprocess.run(["paplay", f"--device={pulse_server.sink}", str(wav)], check=True, timeout=60,
                       env={**os.environ, **pulse_server.env})
        deadline = time.monotonic() + 20
        while len([e for e in events if isinstance(e, SentenceEnd)]) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        job.finish()
    assert not [e for e in events if isinstance(e, Error)]
    final = [t for t in events if isinstance(t, Translated) and not t.draft]
    assert final and all(t.language == "pt" for t in final)
    text = " ".join(t.text for t in final).lower()
    assert "trem" in text or "comboio" in text, text  # "train"
    assert "guarda-chuva" in text or "casaco" in text, text  # "umbrella", "coat"
