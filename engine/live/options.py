"""What a live session is asked to do: one frozen dataclass, validated once."""

from __future__ import annotations

import dataclasses
from typing import Any

from engine.features import N_FRAMES
from engine.glossary import Glossary
from engine.live.policy import PolicyOptions


@dataclasses.dataclass(frozen=True)
class LiveOptions:
    device: Any = None  # audio input: DeviceInfo, index, name or None (the default input)
    language: str | None = None  # None: detected from the first speech, then kept
    task: str = "transcribe"  # or "translate" (speech → English)
    beam_size: int = 1
    # New audio between two decodes (at least; more when a step takes longer). Measured at 1x over 10 min of
    # English (bench/stream_latency.py, offline WER 4.4 %): 1.0 s → commit lag p50 1.97 s, p90 3.04 s, WER
    # 5.9 %, CPU RTF 0.46; 0.5 s with a 1 s agreement gap → p50 1.76 s and tentative text twice as often, but
    # WER 6.6 % and twice the CPU.
    min_step_s: float = 1.0
    # The first decode of an utterance comes after this much speech instead of min_step_s, so its first
    # words show up about a second after they are spoken (the rest of the utterance steps at min_step_s).
    first_step_s: float = 0.5
    # Before that first decode, a draft decode after this much speech shows the utterance's first words
    # sooner. The draft is display only (a Partial): it has no prompt (a short stretch decoded with the
    # committed text as prompt can echo the prompt) and never reaches the policy, so what is committed is
    # the same with or without it. None: no draft.
    first_draft_s: float | None = 0.3
    # The speaker paused this long (as the VAD hears it): one decode over the buffered audio commits all of
    # it, instead of waiting for a second agreeing hypothesis and the edge guard (2–4 s). None: off, the
    # behaviour before (LocalAgreement, and the tail committed after policy.pause_reset_s of silence).
    finalize_pause_s: float | None = 0.4
    # With finalize_pause_s: while the buffered utterance is shorter than this, what two hypotheses agree on
    # stays tentative and the pause commits the utterance whole, from the one decode that heard all of it.
    # Early commits were most of streamed WER's excess over offline: decodes of an utterance's first second
    # agree on a word the whole utterance corrects ("Price" for "Prices for", "1000" for "Thousands of").
    # Measured on bench/live_lag.py's English (213 s, fast-forwarded through the recogniser, offline greedy
    # 3.29 %): 0 → 5.13 %, 6 s → 4.72 %. Longer speech without a pause commits by agreement as before.
    hold_commits_s: float = 6.0
    # The decode that finalises an utterance at a pause searches again with this beam (None or beam_size: never)
    # when its greedy decode was unsure of a word — its least probable word below final_beam_below_p (None:
    # every finalising decode searches with the beam) — from the same encoder output. Fed through the
    # recogniser without a clock (deterministic; docs/results/live_lag_experiments.md), beam 5 below 0.4
    # searched a third of the English utterances and most Spanish ones: English 4.72 → 3.90 % (beam 5 on every
    # utterance: 3.90), the same English as captured through PulseAudio 7.39 → 5.34 % (every one: 4.72),
    # Spanish 38.51 → 32.43 %. In real time on two cores (one side-by-side run, 2026-12-02 11:40): sentence-final
    # lag p50 English 0.91 → 0.95 s, Spanish 1.04 → 1.37 s, Spanish→English translation p90 2.35 → 2.72 s;
    # beam 5 on every utterance instead cost a second (English p50 1.97 s) and delayed the next utterance's
    # decodes. Streamed WER in real time moves by ±1 point from run to run of the same options, more than
    # either change: 5.54 / 6.37 / 6.78 % in that run.
    # In the run of 12:47 with it (English sentence-final 1.04/1.36 s, WER 5.34 %) the Spanish, whose utterances
    # greedy is unsure of 14 times in 16, fell behind (sentence-final p90 4.93 s, translation p90 5.71 s): its
    # searches queued behind one another. With final_beam_within_s (a search only while the sentence is still
    # final in time) it is the default: side by side at 15:07 (docs/results/live_lag_final_beam_in_time.md)
    # English 5.75 % (greedy 5.95 %) at sentence-final 1.00/1.34 s, Spanish 32.43 % (34.46 %) at 1.32/1.89 s,
    # Spanish→English translation 1.70/2.53 s, first partial 0.42 s, nothing dropped.
    final_beam_size: int | None = 5
    final_beam_below_p: float | None = 0.4
    # A search runs only if, by what the last searches cost (as a multiple of their greedy decodes), the
    # utterance is still final this long after the speaker stopped — counted from the speech's end in real time,
    # so audio waiting since before the pause (the recogniser behind) counts too — and not once the speaker has
    # gone on. None: always (a file fast-forwarded always searches: it cannot fall behind).
    # 1.3 s until 2026-12-03: a typical English utterance is decided ~0.9 s after the speaker stopped (the 0.4 s
    # pause, then its greedy decode) and a search costs about one greedy decode more, so 1.3 s left it to the
    # machine's noise whether a search ran: three real-time runs of the same English (docs/results/live_lag.md,
    # live_lag_en_repeat.md) left 2, 6 and 0 unsure utterances greedy and scored 4.31, 5.95 and 3.08 % WER, at
    # sentence-final p90 ≤ 1.04 s — far inside the 2.5 s target. At 1.8 s they run (0–2 left greedy in three
    # runs, same p90: 1.00–1.04 s), but the WER did not follow (6.78, 3.08, 5.34 %): the spread is where each
    # run's decodes fall, not the searches. Kept for the words a search mends without a clock (4.72 → 3.90 %).
    final_beam_within_s: float | None = 1.8
    encoder_frames: str = "audio"  # "audio": encode the buffered audio only; "full": pad to 30 s
    # "audio" mode appends this much silence (zero log-mel frames) after the buffered audio before
    # encoding: without it the decoder, seeing speech run to the very last frame, does not end and loops
    # (measured: 5 s of speech → 224 looping tokens, 7.9 s); with 2 s it ends, and the text equals the
    # 30 s padded window's at a third to a fifth of the encoder time.
    encoder_pad_s: float = 2.0
    vad: bool = True  # gate the recogniser with Silero VAD (silence never produces text)
    vad_threshold: float = 0.5
    # Without the VAD, audio whose peak stays below this (dBFS) counts as silence: Whisper turns digital
    # silence into "You" otherwise. None: everything is speech.
    silence_threshold_db: float | None = -60.0
    max_fallbacks: int = 1  # temperature fallbacks per step (a live step cannot afford all five)
    no_speech_threshold: float | None = 0.6
    log_prob_threshold: float | None = -1.0
    compression_ratio_threshold: float | None = 2.4
    # Live, two hypotheses close together agree too easily on the same mistake (both heard the buffer's end
    # cut off, with nearly the same context), so an agreed word waits until 0.6 s of audio follows it.
    # Measured, 10 min of English fast-forwarded (offline WER 4.4 %): 0.5 s steps 8.2 %; 0.5 s steps
    # comparing each hypothesis with the one decoded 1 s earlier (agree_gap_s=1.0, `parley live --step 0.5
    # --agree-gap 1`) 6.4 %; 1.0 s steps 6.0 %. At 1.0 s steps the gap only delays commits (1x: lag p50 2.18 s
    # vs 1.97 s, WER no better), so it is off by default. The policy's own defaults are 0 (pure LA-2).
    policy: PolicyOptions = PolicyOptions(edge_guard_s=0.6)
    initial_prompt: str | None = None  # names and spellings to prime the recogniser with
    glossary: Glossary | None = None  # the user's words: each decode is primed with them and biased toward them
    # Translate finished sentences into this language ("en": Whisper's own speech translation; others
    # need a text-translation pack). None: no translation.
    translate_to: str | None = None
    # A sentence is handed to translation at its end (punctuation), after a pause of policy.pause_reset_s,
    # after a gap this long between two of its words, or once it is this long.
    sentence_gap_s: float = 1.5
    sentence_max_chars: int = 160
    # The tentative tail is retranslated as a draft at most this often (None: finished sentences only).
    # Into English a draft is a Whisper decode of the tail's audio: on a CPU that competes with recognition
    # for the same cores, so it is off there unless speech_drafts_on_cpu.
    draft_interval_s: float | None = 1.5
    speech_drafts_on_cpu: bool = False
    level_interval_s: float = 0.05  # Level events at most this often
    # Write everything the session hears to this wav (16 kHz mono, 16-bit), on the same clock as the
    # segments' times, so corrected lines can be cut out of it as training data (engine.corrections).
    record_path: str | None = None

    def __post_init__(self):
        if self.task not in ("transcribe", "translate"):
            raise ValueError(f"task must be 'transcribe' or 'translate', got {self.task!r}")
        if self.encoder_frames not in ("audio", "full"):
            raise ValueError(f"encoder_frames must be 'audio' or 'full', got {self.encoder_frames!r}")
        if self.draft_interval_s is not None and self.draft_interval_s <= 0:
            raise ValueError(f"draft_interval_s must be > 0 or None, got {self.draft_interval_s}")
        if self.first_draft_s is not None and not 0 < self.first_draft_s < self.first_step_s:
            raise ValueError(f"first_draft_s must be None or in (0, first_step_s), got {self.first_draft_s}")
        if self.min_step_s <= 0 or self.first_step_s <= 0 or self.beam_size < 1 or self.encoder_pad_s < 0:
            raise ValueError("min_step_s and first_step_s must be > 0, beam_size ≥ 1 and encoder_pad_s ≥ 0")
        if self.finalize_pause_s is not None and not 0 < self.finalize_pause_s < self.policy.pause_reset_s:
            raise ValueError(f"finalize_pause_s must be None or in (0, policy.pause_reset_s), "
                             f"got {self.finalize_pause_s}")
        if self.final_beam_size is not None and self.final_beam_size < 1:
            raise ValueError(f"final_beam_size must be None or ≥ 1, got {self.final_beam_size}")
        if self.final_beam_within_s is not None and self.final_beam_within_s <= 0:
            raise ValueError(f"final_beam_within_s must be None or > 0, got {self.final_beam_within_s}")
        if self.final_beam_below_p is not None and not 0 < self.final_beam_below_p <= 1:
            raise ValueError(f"final_beam_below_p must be None or in (0, 1], got {self.final_beam_below_p}")
        if not 0 <= self.hold_commits_s < self.policy.trim_after_s:
            raise ValueError(f"hold_commits_s must be in [0, policy.trim_after_s), got {self.hold_commits_s}")
        if self.sentence_gap_s <= 0 or self.sentence_max_chars < 1:
            raise ValueError("sentence_gap_s must be > 0 and sentence_max_chars ≥ 1")
        if (self.policy.max_buffer_s + self.encoder_pad_s) * 100 > N_FRAMES:
            raise ValueError("policy.max_buffer_s must fit one 30 s encoder window")
