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


def test_a_file_whose_translation_fails_after_detection_keeps_its_rows_and_says_why(qtbot, monkeypatch, tmp_path):
    import threading

    from desktop_app.worker import FileRequest
    from engine.errors import PackError
    from engine.whisper.results import Segment

    segments = [Segment(0, 0.0, 2.0, " Bonjour à tous.", ()), Segment(1, 2.0, 4.0, " Il fait froid.", ())]
    model = SimpleNamespace(device="cpu", threads=1, provider="CPUExecutionProvider", device_reason="CPU requested",
                            transcribe=lambda *a, **k: SimpleNamespace(segments=segments, language="fr",
                                                                   language_probability=0.9, duration_s=4.0))

    def no_pair(*args, **kwargs):
        raise PackError("no translation pack for fr → de (nor via en); installed pairs: en→de")

    monkeypatch.setattr("engine.file_translation.text_translator", lambda *a, **k: (lambda lines, s, t: lines))
    monkeypatch.setattr("engine.file_translation.translate_segments", no_pair)
    worker = EngineWorker(model_loader=lambda pack_path, dev: model)
    worker.load_model("whisper-base", "whisper-base-int8", "cpu")
    done, failed = [], []
    worker.file_done.connect(done.append)
    worker.file_failed.connect(failed.append)
    worker.transcribe_file(FileRequest(str(tmp_path / "talk.fr.wav"), None, "de", threading.Event()))
    assert failed == [] and len(done) == 1
    result = done[0]
    assert [r.text for r in result.rows] == ["Bonjour à tous.", "Il fait froid."]  # nothing lost
    assert all(not r.translation for r in result.rows)
    assert "talk.fr.wav was transcribed, but not translated into de" in result.note and "fr → de" in result.note


def test_the_window_keeps_the_rows_and_shows_the_note_in_the_banner(make_window):
    from desktop_app.transcript_model import SegmentRow
    from desktop_app.worker import FileResult

    window = make_window(load_model=False)
    note = "talk.fr.wav was transcribed, but not translated into de: no translation pack for fr → de."
    window._on_file_done(FileResult("talk.fr.wav", [SegmentRow(0, 0.0, 2.0, "Bonjour à tous.")], "fr", 0.9, 2.0,
                                    1.0, note))
    assert [r.text for r in window.transcript.rows()] == ["Bonjour à tous."]
    assert window.banner.message() == note
