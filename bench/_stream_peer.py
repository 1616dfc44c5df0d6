"""The peer for bench/stream_latency.py: whisper_streaming's algorithm over faster-whisper, run in the
reference environment (bench/setup_reference.sh), never imported by Parley.

    python _stream_peer.py CT2_DIR AUDIO.npy OUT.json

The algorithm as ufal/whisper_streaming (whisper_online.py, Macháček et al. 2023) publishes it and as
its simulation mode runs it, re-written here from its description because the PyPI packaging of it
needs ALSA headers and a Moses tokenizer build: audio arrives at 1x wall-clock speed; whenever at
least ``min_chunk`` (1 s) of new audio is in, the whole buffer is transcribed by faster-whisper
(beam 5, word timestamps, condition_on_previous_text, the prompt = the last 200 characters of
committed text that has left the buffer); LocalAgreement-2 commits the longest common prefix of the
last two hypotheses (words starting after the last commit − 0.1 s, a 1–5-word n-gram overlap with the
committed tail removed); when the buffer exceeds 15 s it is cut at the end of the second-to-last
segment that is already committed. faster-whisper's default temperature fallback stays on, as it is
in whisper_streaming.
"""

from __future__ import annotations

import json
import sys
import time

import numpy as np
from faster_whisper import WhisperModel

SR = 16000
MIN_CHUNK_S = 1.0
TRIM_S = 15.0
PROMPT_CHARS = 200


class Hypotheses:
    def __init__(self):
        self.committed: list[tuple[float, float, str]] = []  # (start, end, word) committed, in the buffer
        self.previous: list[tuple[float, float, str]] = []
        self.last_end = 0.0

    def insert(self, words: list[tuple[float, float, str]]) -> list[tuple[float, float, str]]:
        new = [w for w in words if w[0] > self.last_end - 0.1]
        if new and self.committed and abs(new[0][0] - self.last_end) < 1:
            for n in range(min(len(self.committed), len(new), 5), 0, -1):
                tail = " ".join(w[2].strip() for w in self.committed[-n:])
                head = " ".join(w[2].strip() for w in new[:n])
                if tail == head:
                    new = new[n:]
                    break
        agreed = []
        while new and self.previous and new[0][2].strip() == self.previous[0][2].strip():
            agreed.append(new.pop(0))
            self.previous.pop(0)
        self.previous = new
        if agreed:
            self.last_end = agreed[-1][1]
            self.committed.extend(agreed)
        return agreed


def main(ct2: str, npy: str, out: str) -> None:
    audio = np.load(npy).astype(np.float32)
    model = WhisperModel(ct2, device="cpu", compute_type="int8", cpu_threads=2)
    hyp = Hypotheses()
    history: list[tuple[float, float, str]] = []  # all committed words (absolute times)
    buffer_start = 0.0
    words_out, partials, steps = [], [], []
    max_buffer = 0.0
    t0 = time.monotonic()
    fed = 0  # samples released so far
    while fed < audio.size:
        now = time.monotonic() - t0
        due = min(int(now * SR), audio.size)
        if due - fed < MIN_CHUNK_S * SR and due < audio.size:
            time.sleep((fed + MIN_CHUNK_S * SR - due) / SR)
            continue
        fed = due
        start_i = int(buffer_start * SR)
        buf = audio[start_i:fed]
        max_buffer = max(max_buffer, buf.size / SR)
        left = [w for w in history if w[1] <= buffer_start]
        prompt, chars = [], 0
        for w in reversed(left):
            if chars + len(w[2]) > PROMPT_CHARS:
                break
            prompt.insert(0, w[2])
            chars += len(w[2])
        step_t = time.perf_counter()
        segments, _ = model.transcribe(buf, language="en", beam_size=5, word_timestamps=True,
                                       condition_on_previous_text=True, initial_prompt="".join(prompt) or None,
                                       vad_filter=False)
        segments = list(segments)
        steps.append(time.perf_counter() - step_t)
        words = [(w.start + buffer_start, w.end + buffer_start, w.word) for s in segments for w in (s.words or [])]
        committed = hyp.insert(words)
        emitted = time.monotonic() - t0
        history.extend(committed)
        words_out.extend((w[2], w[1], emitted) for w in committed)
        partials.append(time.monotonic())
        if buf.size / SR > TRIM_S and len(segments) > 1:
            ends = [s.end + buffer_start for s in segments[:-1]]
            cut = [e for e in ends if e <= hyp.last_end]
            if cut:
                buffer_start = cut[-1]
                hyp.committed = [w for w in hyp.committed if w[1] > buffer_start]
    words_out.extend((w[2], w[1], time.monotonic() - t0) for w in hyp.previous)  # flush at the end
    with open(out, "w") as f:
        json.dump({"words": words_out, "partials": partials, "step_s": steps, "max_buffer_s": max_buffer,
                   "wall_s": time.monotonic() - t0}, f)


if __name__ == "__main__":
    main(*sys.argv[1:4])
