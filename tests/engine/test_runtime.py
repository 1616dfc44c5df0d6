"""The session factory: providers, threads, caching, clear errors."""

from __future__ import annotations

import logging
import platform
import sys

import numpy as np
import pytest

from engine import runtime
from engine.errors import PackError
from needs import require_module

onnx = require_module("onnx", "dev")


@pytest.fixture
def tiny_model(tmp_path):
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [None])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [None])
    graph = helper.make_graph([helper.make_node("Neg", ["x"], ["y"])], "tiny", [x], [y])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    path = tmp_path / "tiny.onnx"
    onnx.save(model, str(path))
    runtime.clear_cache()
    return path


def test_cpu_session_runs_and_reports_its_provider(tiny_model):
    s = runtime.create_session(tiny_model, device="cpu", threads=1)
    assert runtime.provider_of(s) == "CPUExecutionProvider"
    np.testing.assert_array_equal(s.run(None, {"x": np.array([1.0, -2.0], np.float32)})[0], [-1.0, 2.0])


def test_one_session_per_file_device_and_threads(tiny_model):
    a = runtime.create_session(tiny_model, device="cpu", threads=1)
    assert runtime.create_session(tiny_model, device="cpu", threads=1) is a
    assert runtime.create_session(tiny_model, device="cpu", threads=2) is not a


def test_a_graph_the_engine_writes_opens_through_the_same_factory_once_per_name(tiny_model):
    from engine.seq2seq import gather_model

    graph = gather_model(1, 2)  # the beam reorder's Gather of two float tensors
    s = runtime.graph_session(graph, "gather-test", "cpu", 1)
    assert runtime.graph_session(graph, "gather-test", "cpu", 1) is s and runtime.provider_of(s) == runtime.CPU
    x = np.arange(6, dtype=np.float32).reshape(3, 2)
    y0, y1 = s.run(None, {"x0": x, "x1": -x, "rows": np.array([2, 0], np.int64)})
    np.testing.assert_array_equal(y0, x[[2, 0]])
    np.testing.assert_array_equal(y1, -x[[2, 0]])


def test_an_unloadable_graph_is_named_by_the_install_check(tmp_path, tiny_model):
    runtime.check_loadable(tiny_model)
    junk = tmp_path / "encoder_model.onnx"
    junk.write_bytes(b"not a graph")
    with pytest.raises(PackError, match="encoder_model.onnx: onnxruntime cannot load this graph"):
        runtime.check_loadable(junk)


def test_missing_model_file_is_named(tmp_path):
    with pytest.raises(PackError, match="nothere.onnx.*parley models build"):
        runtime.create_session(tmp_path / "nothere.onnx", device="cpu")


def test_unknown_device_is_rejected():
    with pytest.raises(ValueError, match="gpu"):
        runtime.resolve_device("gpu")


def test_cuda_without_provider_warns_and_falls_back_to_cpu(monkeypatch, caplog, tiny_model):
    monkeypatch.setattr(runtime.ort, "get_available_providers", lambda: ["CPUExecutionProvider"])
    monkeypatch.setattr(runtime, "_cuda_probe", None)
    with caplog.at_level(logging.WARNING, logger="engine.runtime"):
        providers, reason = runtime.resolve_device("cuda")
    assert providers == ["CPUExecutionProvider"]
    assert "CUDA unavailable" in reason and "fell back to CPU" in reason
    assert any("GPU requested" in r.message for r in caplog.records)
    s = runtime.create_session(tiny_model, device="cuda", threads=1)
    assert runtime.provider_of(s) == "CPUExecutionProvider"
    monkeypatch.setattr(runtime, "_cuda_probe", None)


def test_auto_is_quiet_and_picks_what_works(caplog):
    with caplog.at_level(logging.WARNING, logger="engine.runtime"):
        providers, reason = runtime.resolve_device("auto")
    assert providers[-1] == "CPUExecutionProvider" and reason
    if providers == ["CPUExecutionProvider"]:
        assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


def _rss_mb() -> float:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS")) / 1024


@pytest.mark.skipif(not sys.platform.startswith("linux") or platform.libc_ver()[0] != "glibc",
                    reason="malloc_trim is glibc's")
def test_release_free_memory_returns_freed_heap_blocks_to_the_os():
    # Every other 96 KB block freed: holes glibc keeps (they are below its mmap threshold and not
    # at the heap's top), as it keeps the decoder's freed K/V outputs between windows.
    blocks = [np.ones(96 * 1024 // 8) for _ in range(1200)]  # ~115 MB
    del blocks[::2]
    held = _rss_mb()
    runtime.release_free_memory()
    after = _rss_mb()
    assert held - after > 25, f"RSS {held:.0f} MB with the holes, {after:.0f} MB after release_free_memory()"
