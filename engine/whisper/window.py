"""One window (≤ 30 s) of encoded audio → tokens → segments (and words), with Whisper's guards.

The prompt runs through the decoder once; each temperature of the fallback reuses its cache. A
window whose output repeats itself (compression ratio) or is unsure (avg logprob) is decoded again
at the next temperature; a window that is probably silent (no-speech prob high and logprob low) is
skipped. ``max_fallbacks`` and ``time_budget_s`` bound that for live use.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import Sequence

import numpy as np

from engine.errors import CancelledError
from engine.whisper import decoding as dec
from engine.whisper.results import DecodingResult, Segment
from engine.whisper.runner import Decoder, KVCache
from engine.whisper.timing import SegmentWords, assign_words, find_alignment
from engine.whisper.tokenizer import TIME_PRECISION_S, WhisperTokenizer

log = logging.getLogger(__name__)

INPUT_STRIDE = 2  # mel frames per encoder position (and per timestamp step of 20 ms)


class CachedInference:
    """The decoder with one window's cache, as the search functions see it. A set ``cancel`` stops the search at
    its next token (CancelledError): a cancelled file job returns within a decoder step, not a 30 s window."""

    def __init__(self, decoder: Decoder, cache: KVCache, cancel: threading.Event | None = None):
        self.decoder = decoder
        self.cache = cache
        self.cancel = cancel

    def step(self, tokens: np.ndarray) -> np.ndarray:
        if self.cancel is not None and self.cancel.is_set():
            raise CancelledError("cancelled while decoding")
        return self.decoder.step(self.cache, tokens)

    def reorder(self, source: np.ndarray) -> None:
        self.decoder.reorder(self.cache, source)


@dataclasses.dataclass
class _Attempt:
    tokens: list[int]
    avg_logprob: float
    compression_ratio: float
    temperature: float
    truncated: bool


def suppressed_tokens(options: dec.DecodeOptions, tokenizer: WhisperTokenizer, pack_list: Sequence[int]) -> list[int]:
    """-1 expands to the non-speech symbols; the control tokens are never sampled."""
    tokens = [t for t in options.suppress_tokens if t >= 0]
    if -1 in options.suppress_tokens:
        tokens.extend(pack_list or tokenizer.non_speech_tokens)
    s = tokenizer.special
    tokens.extend([s.translate, s.transcribe, s.sot, s.sot_prev, s.sot_lm, s.no_speech])
    return sorted(set(tokens))


def term_sequences(tokenizer: WhisperTokenizer, terms: Sequence[str]) -> list[list[int]]:
    """The token sequences a term is written with inside a transcript: after a space, as Whisper writes a word
    (at a window's start too), as given and, for a term in lower case, capitalised (a sentence's first word)."""
    sequences = []
    for term in terms:
        term = " ".join(term.split())
        for variant in dict.fromkeys((term, term[:1].upper() + term[1:])):
            sequences.append(tokenizer.encode(" " + variant))
    return sequences


def build_prompt(tokenizer: WhisperTokenizer, sot_sequence: list[int], previous: Sequence[int],
                 options: dec.DecodeOptions, n_text_ctx: int) -> tuple[list[int], int, list[int]]:
    """[<|startofprev|> previous…] sot_sequence [<|notimestamps|>] [<|0.00|> prefix…] →
    (tokens, index of <|startoftranscript|>, the prefix tokens that count as output)."""
    s = tokenizer.special
    prompt: list[int] = []
    if previous:
        prompt = [s.sot_prev, *list(previous)[-(n_text_ctx // 2 - 1):]]
    sot_index = len(prompt)
    prompt.extend(sot_sequence)
    if options.without_timestamps:
        prompt.append(s.no_timestamps)
    initial: list[int] = []
    if options.prefix:
        prefix = tokenizer.encode(" " + options.prefix.strip())[: n_text_ctx // 2 - 1]
        initial = prefix if options.without_timestamps else [s.timestamp_begin, *prefix]
    prompt.extend(initial)
    return prompt, sot_index, initial


def split_segments(tokens: list[int], timestamp_begin: int, segment_frames: int
                   ) -> tuple[list[tuple[float, float, list[int]]], int, bool]:
    """Whisper's segmenting of a window's tokens: consecutive timestamp pairs close segments.

    Returns ([(start_s, end_s, tokens)] relative to the window, frames consumed, single_timestamp_ending)."""
    is_ts = [t >= timestamp_begin for t in tokens]
    single_ending = is_ts[-2:] == [False, True]
    consecutive = [i + 1 for i in range(len(tokens) - 1) if is_ts[i] and is_ts[i + 1]]
    segments: list[tuple[float, float, list[int]]] = []
    if consecutive:
        slices = consecutive + ([len(tokens)] if single_ending else [])
        last = 0
        for current in slices:
            part = tokens[last:current]
            segments.append(((part[0] - timestamp_begin) * TIME_PRECISION_S,
                             (part[-1] - timestamp_begin) * TIME_PRECISION_S, part))
            last = current
        if single_ending:
            consumed = segment_frames
        else:
            consumed = (tokens[last - 1] - timestamp_begin) * INPUT_STRIDE
    else:
        duration = segment_frames / 100.0
        stamps = [t for t in tokens if t >= timestamp_begin]
        if stamps and stamps[-1] != timestamp_begin:
            duration = (stamps[-1] - timestamp_begin) * TIME_PRECISION_S
        segments.append((0.0, duration, tokens))
        consumed = segment_frames
    return segments, consumed, single_ending


def detect_language(decoder: Decoder, tokenizer: WhisperTokenizer, audio: np.ndarray) -> dict[str, float]:
    """P(language) from the logits after <|startoftranscript|>, over the pack's language tokens."""
    logits, _ = decoder.prefill(audio, [tokenizer.special.sot])
    codes = list(tokenizer.languages)
    ids = np.array([tokenizer.languages[c] for c in codes])
    sub = logits[0, ids].astype(np.float64)
    probs = np.exp(sub - sub.max())
    probs /= probs.sum()
    return dict(sorted(zip(codes, probs.tolist()), key=lambda kv: -kv[1]))


def decode_window(decoder: Decoder, tokenizer: WhisperTokenizer, pack_suppress: Sequence[int], n_text_ctx: int,
                  audio: np.ndarray, options: dec.DecodeOptions, previous: Sequence[int] = (),
                  num_frames: int | None = None, time_offset_s: float = 0.0, segment_id: int = 0,
                  last_speech_s: float = 0.0, cancel: threading.Event | None = None) -> DecodingResult:
    """Decode one window of audio states [1, enc_len, d]. num_frames: mel frames of real audio in it
    (default: all). Times in the result are absolute (time_offset_s added). ``cancel`` set: CancelledError at
    the next decoder step."""
    t0 = time.monotonic()
    deadline = t0 + options.time_budget_s if options.time_budget_s else None
    enc_len = audio.shape[1]
    if num_frames is None:
        num_frames = enc_len * INPUT_STRIDE
    s = tokenizer.special

    language, language_probs = options.language, None
    if tokenizer.multilingual and language is None:
        language_probs = detect_language(decoder, tokenizer, audio)
        language = next(iter(language_probs))
    elif not tokenizer.multilingual:
        language = "en"
    sot_sequence = tokenizer.sot_sequence(language, options.task)
    prompt, sot_index, initial = build_prompt(tokenizer, sot_sequence, previous, options, n_text_ctx)
    sample_len = min(options.sample_len or n_text_ctx // 2, n_text_ctx - len(prompt))

    filters: list[dec.LogitFilter] = []
    if options.bias_terms and options.bias_logit > 0:  # first: the filters after it veto what it favours
        filters.append(dec.TermBias(term_sequences(tokenizer, options.bias_terms), options.bias_logit,
                                    options.bias_first_logit))
    if options.suppress_blank:
        filters.append(dec.SuppressBlank(tokenizer.blank_tokens))
    filters.append(dec.SuppressTokens(suppressed_tokens(options, tokenizer, pack_suppress)))
    if not options.without_timestamps:
        max_initial = (None if options.max_initial_timestamp is None
                       else round(options.max_initial_timestamp / TIME_PRECISION_S))
        filters.append(dec.TimestampRules(s.eot, s.no_timestamps, s.timestamp_begin, max_initial))

    prompt_logits, base_cache = decoder.prefill(audio, prompt)
    at_sot = prompt_logits[sot_index].astype(np.float64)
    no_speech_prob = float(np.exp(at_sot[s.no_speech] - dec._logsumexp(at_sot)))
    first_logits = prompt_logits[-1].copy()
    del prompt_logits, at_sot  # [prompt length, n_vocab]: up to 46 MB, not needed while decoding

    attempts: list[_Attempt] = []
    chosen: _Attempt | None = None
    for i, temperature in enumerate(options.temperatures):
        if i > 0 and (options.max_fallbacks is not None and i > options.max_fallbacks
                      or deadline is not None and time.monotonic() > deadline):
            break
        if temperature == 0 and options.beam_size > 1:
            n = options.beam_size
        else:
            n = 1 if temperature == 0 else options.best_of
        inference = CachedInference(decoder, decoder.tile(base_cache, n), cancel)
        if temperature == 0 and options.beam_size > 1:
            candidates, truncated = dec.beam_search(inference, first_logits, n, options.patience, filters, s.eot,
                                                    sample_len, initial, deadline)
        else:
            rng = np.random.default_rng(options.seed + i)
            candidates, truncated = dec.greedy_or_sample(inference, first_logits, n, temperature, filters, s.eot,
                                                         sample_len, initial, rng, deadline)
        best = candidates[dec.rank(candidates, options.length_penalty)]
        text = tokenizer.decode(best.tokens)
        attempt = _Attempt(best.tokens, best.sum_logprob / (len(best.tokens) + 1),
                           dec.compression_ratio(text.strip()), temperature, truncated)
        attempts.append(attempt)
        needs_fallback = (
            options.compression_ratio_threshold is not None
            and attempt.compression_ratio > options.compression_ratio_threshold
            or options.log_prob_threshold is not None and attempt.avg_logprob < options.log_prob_threshold)
        if (options.no_speech_threshold is not None and no_speech_prob > options.no_speech_threshold
                and options.log_prob_threshold is not None and attempt.avg_logprob < options.log_prob_threshold):
            needs_fallback = False  # silence: another temperature will not find words in it
        if not needs_fallback or truncated:
            chosen = attempt
            break
        log.debug("window at %.2f s: T=%.1f failed (compression %.2f, avg logprob %.2f); falling back",
                  time_offset_s, temperature, attempt.compression_ratio, attempt.avg_logprob)
    if chosen is None:  # every temperature failed: the likeliest output that does not repeat itself
        fine = [a for a in attempts if options.compression_ratio_threshold is None
                or a.compression_ratio <= options.compression_ratio_threshold]
        chosen = dataclasses.replace(max(fine or attempts, key=lambda a: a.avg_logprob),
                                     temperature=attempts[-1].temperature)

    skipped = (options.no_speech_threshold is not None and no_speech_prob > options.no_speech_threshold
               and not (options.log_prob_threshold is not None and chosen.avg_logprob > options.log_prob_threshold))
    common = dict(tokens=tuple(chosen.tokens), text=tokenizer.decode(chosen.tokens), language=language,
                  language_probs=language_probs, avg_logprob=chosen.avg_logprob, no_speech_prob=no_speech_prob,
                  compression_ratio=chosen.compression_ratio, temperature=chosen.temperature,
                  truncated=chosen.truncated)
    if skipped:
        return DecodingResult(segments=(), consumed_frames=num_frames, skipped=True, **common)

    parts, consumed, single_ending = split_segments(chosen.tokens, s.timestamp_begin, num_frames)
    kept = [SegmentWords(time_offset_s + start, time_offset_s + end, [t for t in toks if t < s.eot])
            for start, end, toks in parts]
    if options.word_timestamps and decoder.has_cross_attentions and any(k.text_tokens for k in kept):
        text_tokens = [t for k in kept for t in k.text_tokens]
        align_seq = [*sot_sequence, s.no_timestamps, *text_tokens, s.eot]
        logits, attention = decoder.cross_attentions(audio, align_seq)
        alignment = find_alignment(attention, logits, text_tokens, len(sot_sequence) + 1, num_frames, s.eot,
                                   lambda toks: tokenizer.split_to_word_tokens(toks, language))
        assign_words(alignment, kept, time_offset_s, last_speech_s)
        if not single_ending:
            ends = [k.words[-1].end_s for k in kept if k.words]
            if ends and ends[-1] > time_offset_s:
                consumed = max(1, round((ends[-1] - time_offset_s) * 100))
    elif options.word_timestamps and not decoder.has_cross_attentions:
        log.warning("this pack's decoder has no cross_attentions output: no word timestamps")

    segments = []
    for (_, _, toks), k in zip(parts, kept):
        text = tokenizer.decode(toks)
        if k.start == k.end or not text.strip():
            continue  # instantaneous or empty: Whisper clears these, faster-whisper drops them
        segments.append(Segment(id=segment_id + len(segments), start_s=round(k.start, 3), end_s=round(k.end, 3),
                                text=text, tokens=tuple(toks), words=tuple(k.words),
                                avg_logprob=chosen.avg_logprob, compression_ratio=chosen.compression_ratio,
                                no_speech_prob=no_speech_prob, temperature=chosen.temperature))
    return DecodingResult(segments=tuple(segments), consumed_frames=max(1, consumed), skipped=False, **common)
