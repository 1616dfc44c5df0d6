"""What the worker tells the window about the model it loaded."""

from __future__ import annotations

from types import SimpleNamespace

from desktop_app.worker import EngineWorker


def loaded_note(model, device: str) -> str:
    worker = EngineWorker(model_loader=lambda pack_path, dev: model)
    infos = []
    worker.model_loaded.connect(infos.append)
    worker.load_model("whisper-base", "whisper-base-int8", device)
    (info,) = infos
    return info.note


def test_a_gpu_request_on_the_cpu_says_the_reason_the_model_was_given(qtbot):
    model = SimpleNamespace(provider="CPUExecutionProvider",
                            device_reason="CUDA unavailable: libcudnn.so.9 is missing; fell back to CPU")
    note = loaded_note(model, "cuda")
    assert "GPU requested" in note and "libcudnn.so.9 is missing" in note and "CPU" in note


def test_a_cpu_or_working_gpu_model_has_no_note(qtbot):
    assert loaded_note(SimpleNamespace(provider="CPUExecutionProvider", device_reason="CPU requested"), "cpu") == ""
    assert loaded_note(SimpleNamespace(provider="CUDAExecutionProvider", device_reason="CUDA 12"), "cuda") == ""
