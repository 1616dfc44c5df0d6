"""Audio in: files decoded and resampled to 16 kHz mono float32, live devices captured through a bounded ring,
a file replayed through that ring as a live source, and the voice activity detector that gates the live path.

    decode.py       load_audio / iter_audio / probe (soundfile, PyAV), resample, the streaming Resampler
    capture.py      device list (PortAudio, PulseAudio/PipeWire monitors), AudioRing, Capture
    file_source.py  FileSource: a file in real time through a capture's ring (what a live session reads)
    vad.py          Silero VAD (ONNX): the pinned model, SileroVad, VadGate

Arrows: capture and file_source use decode; vad uses nothing here. The fake sound device tests replay clips
through is tests/fake_audio.py.
"""
