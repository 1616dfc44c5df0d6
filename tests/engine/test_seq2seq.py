"""The shared encoder–decoder runtime (engine.seq2seq): with IO binding, beam reorder and tiling select the
K/V rows on the device. Copies between host and device are counted through onnxruntime's OrtValue layer
(``numpy()`` is device → host, ``ortvalue_from_numpy`` host → device), on the CPU provider: no GPU needed."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import onnxruntime as ort
import pytest

from engine.seq2seq import CachedDecoder, DecoderSessions, device_gather
from engine.translate.model import DecoderState
from engine.whisper.runner import Decoder, KVCache


class Copies:
    """Counts the OrtValue copies between host and device while installed."""

    def __init__(self, monkeypatch):
        self.to_host = self.to_device = 0
        numpy, from_numpy = ort.OrtValue.numpy, ort.OrtValue.ortvalue_from_numpy

        def counted_numpy(value):
            self.to_host += 1
            return numpy(value)

        def counted_from_numpy(*args, **kwargs):
            self.to_device += 1
            return from_numpy(*args, **kwargs)

        monkeypatch.setattr(ort.OrtValue, "numpy", counted_numpy)
        monkeypatch.setattr(ort.OrtValue, "ortvalue_from_numpy", staticmethod(counted_from_numpy))


class FakeSession:
    """Only what a decoder reads from its sessions when it is built."""

    def get_inputs(self):
        return [SimpleNamespace(name="past_key_values.0.decoder.key", type="tensor(float)")]

    def get_outputs(self):
        return []


def _whisper_decoder(io_binding: bool) -> Decoder:
    pack = SimpleNamespace(dims=SimpleNamespace(n_text_layer=2, n_text_head=2, n_text_state=8))
    session = FakeSession()
    return Decoder(pack, DecoderSessions(session, session, merged=False), io_binding=io_binding, device_type="cpu")


def _kv(batch: int, n: int, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.standard_normal((batch, 2, 3, 4)).astype(np.float32) for _ in range(n)]


def _on_device(arrays):
    return [ort.OrtValue.ortvalue_from_numpy(a, "cpu", 0) for a in arrays]


@pytest.mark.parametrize("dtype", [np.float32, np.float16])
def test_device_gather_selects_rows_as_numpy_does(dtype):
    arrays = [a.astype(dtype) for a in _kv(4, 3)]
    rows = np.array([3, 3, 0, 1])
    got = device_gather("cpu", _on_device(arrays), rows)
    assert all(isinstance(v, ort.OrtValue) for v in got)
    for a, v in zip(arrays, got):
        assert v.numpy().dtype == dtype and np.array_equal(v.numpy(), a[rows])


def test_beam_reorder_with_io_binding_copies_nothing_through_the_host(monkeypatch):
    decoder = _whisper_decoder(io_binding=True)
    arrays = _kv(5, len(decoder.self_names))
    cache = KVCache(self_kv=_on_device(arrays), cross_kv=_on_device(_kv(1, len(decoder.cross_names), 1)),
                    batch=5, length=3)
    source = np.array([4, 0, 0, 2, 1])
    copies = Copies(monkeypatch)
    decoder.reorder(cache, source)
    decoder.reorder(cache, np.arange(5))  # the identity is skipped
    assert (copies.to_host, copies.to_device) == (0, 0)
    assert all(isinstance(v, ort.OrtValue) for v in cache.self_kv)
    assert all(np.array_equal(v.numpy(), a[source]) for v, a in zip(cache.self_kv, arrays))
    assert copies.to_host == len(arrays)  # the counter sees the reads of the check itself


def test_tiling_a_bound_cache_for_the_beams_stays_on_the_device(monkeypatch):
    decoder = _whisper_decoder(io_binding=True)
    decoder.cross_broadcast = False  # both the self and the cross K/V are repeated
    self_kv, cross_kv = _kv(1, len(decoder.self_names)), _kv(1, len(decoder.cross_names), 1)
    base = KVCache(_on_device(self_kv), _on_device(cross_kv), batch=1, length=3)
    copies = Copies(monkeypatch)
    tiled = decoder.tile(base, 5)
    assert (copies.to_host, copies.to_device) == (0, 0)
    assert tiled.batch == 5 and base.batch == 1
    for v, a in zip(tiled.self_kv + tiled.cross_kv, self_kv + cross_kv):
        assert np.array_equal(v.numpy(), np.repeat(a, 5, axis=0))


def test_without_io_binding_the_cache_stays_numpy():
    decoder = _whisper_decoder(io_binding=False)
    arrays = _kv(3, len(decoder.self_names))
    cache = KVCache(list(arrays), _kv(1, len(decoder.cross_names)), batch=3, length=3)
    decoder.reorder(cache, np.array([2, 2, 1]))
    assert all(isinstance(v, np.ndarray) and np.array_equal(v, a[[2, 2, 1]]) for v, a in zip(cache.self_kv, arrays))


def test_translation_beam_rows_are_selected_on_the_device(monkeypatch):
    runner = CachedDecoder(DecoderSessions(FakeSession(), FakeSession(), merged=True), io_binding=True)
    self_kv, cross_kv = _kv(4, 4), _kv(4, 4, 1)
    mask = np.arange(8).reshape(4, 2)
    state = DecoderState(_on_device(self_kv), _on_device(cross_kv), mask, runner.take)
    rows = np.array([1, 1, 3])
    copies = Copies(monkeypatch)
    kept = state.select(rows)
    assert (copies.to_host, copies.to_device) == (0, 0)
    assert np.array_equal(kept.encoder_mask, mask[rows])
    for v, a in zip(kept.self_kv + kept.cross_kv, self_kv + cross_kv):
        assert np.array_equal(v.numpy(), a[rows])
