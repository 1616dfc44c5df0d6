"""The one onnxruntime session factory: providers (CUDA → CPU), threads, graph optimisation.

Every ONNX file the engine runs is opened here, once per (file, device, threads): a second request
returns the same session. The provider that actually runs is read back from the session and logged,
and is what ``provider_of(session)`` (and the CLI/app) report.
"""

from __future__ import annotations

import logging
import os
import shutil
import sys
import threading
from pathlib import Path

import onnxruntime as ort

from engine.errors import PackError

log = logging.getLogger(__name__)

DEVICES = ("auto", "cpu", "cuda")
CUDA = "CUDAExecutionProvider"
CPU = "CPUExecutionProvider"

_sessions: dict[tuple[str, str, int | None], ort.InferenceSession] = {}
_lock = threading.Lock()
_cuda_probe: tuple[bool, str] | None = None
_malloc_trim = None  # glibc's malloc_trim once looked up; False where there is none


def default_threads() -> int:
    """All the cores this process may use (the CLI's default for --threads)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def _probe_cuda() -> tuple[bool, str]:
    """Whether the CUDA provider is listed and can load its libraries (cached: probing costs ~1 s)."""
    global _cuda_probe
    if _cuda_probe is not None:
        return _cuda_probe
    if CUDA not in ort.get_available_providers():
        _cuda_probe = (False, f"this onnxruntime ({ort.__version__}) has no CUDAExecutionProvider; "
                              "install onnxruntime-gpu (`pip install parley[cuda]`)")
        return _cuda_probe
    if sys.platform.startswith("linux") and not os.path.exists("/proc/driver/nvidia") \
            and shutil.which("nvidia-smi") is None:
        # Without a driver there is no GPU to use; probing would only print library-load failures.
        _cuda_probe = (False, "no NVIDIA GPU driver was found on this machine")
        return _cuda_probe
    try:
        # preload_dlls finds CUDA/cuDNN from the nvidia-* pip wheels when they are installed.
        if hasattr(ort, "preload_dlls"):
            ort.preload_dlls()
    except Exception as e:  # noqa: BLE001 - a failed preload just means the system libraries must do
        log.debug("onnxruntime.preload_dlls failed: %s", e)
    ok, reason = True, "CUDA available"
    try:
        import ctypes

        names = ("libcudart.so.13", "libcudart.so.12") if os.name != "nt" else ("cudart64_13.dll", "cudart64_12.dll")
        for i, name in enumerate(names):
            try:
                ctypes.CDLL(name)
                break
            except OSError:
                if i == len(names) - 1:
                    raise
    except OSError as e:
        ok, reason = False, (f"the CUDA runtime library could not be loaded ({e}); install the NVIDIA "
                             "driver and CUDA 12 libraries (`pip install parley[cuda]`)")
    _cuda_probe = (ok, reason)
    return _cuda_probe


def resolve_device(device: str = "auto") -> tuple[list[str], str]:
    """The providers to ask for, in order, and a sentence saying why.

    ``cpu`` → CPU only. ``cuda`` → CUDA then CPU; if CUDA is unavailable a warning says why and the
    session runs on the CPU. ``auto`` → CUDA when it is available, else CPU (quietly).
    """
    if device not in DEVICES:
        raise ValueError(f"device must be one of {DEVICES}, got {device!r}")
    if device == "cpu":
        return [CPU], "CPU requested"
    ok, reason = _probe_cuda()
    if ok:
        return [CUDA, CPU], reason
    if device == "cuda":
        log.warning("GPU requested but %s; running on the CPU instead", reason)
        return [CPU], f"CUDA unavailable: {reason}; fell back to CPU"
    return [CPU], f"CUDA unavailable ({reason}); using CPU"


def _options(threads: int | None) -> ort.SessionOptions:
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.intra_op_num_threads = threads if threads else default_threads()
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    # Without the arena, the encoder's large transient buffers go back to the OS after each run
    # instead of staying reserved (~15% lower peak RSS, same speed on CPU).
    so.enable_cpu_mem_arena = False
    so.log_severity_level = 3  # onnxruntime's own warnings about unused initialisers etc. are noise here
    return so


def create_session(path: str | os.PathLike, device: str = "auto", threads: int | None = None
                   ) -> ort.InferenceSession:
    """The session for one ONNX file on one device with a given number of intra-op threads.

    Cached: the same arguments return the same session. Raises PackError naming the file when it is
    missing or onnxruntime cannot load it.
    """
    path = Path(path)
    return _session((str(path.resolve()), device, threads), path, device, threads)


def graph_session(model: bytes, name: str, device: str = "auto", threads: int | None = 1) -> ort.InferenceSession:
    """The session for a graph the engine writes itself (serialised ONNX ``model``, e.g. the beam reorder's
    one-node Gather), opened as the pack files are; cached by ``name`` (one name, one graph), device and
    threads."""
    return _session((f"<graph {name}>", device, threads), model, device, threads, name)


def _session(key: tuple[str, str, int | None], source: Path | bytes, device: str, threads: int | None,
             name: str | None = None) -> ort.InferenceSession:
    with _lock:
        if key in _sessions:
            return _sessions[key]
        providers, reason = resolve_device(device)
        if isinstance(source, Path):
            name = source.name
            if not source.is_file():
                raise PackError(f"{source}: model file missing; rebuild the pack with `parley models build <name>`")
        model = str(source) if isinstance(source, Path) else source
        try:
            session = ort.InferenceSession(model, sess_options=_options(threads), providers=providers)
        except Exception as e:  # onnxruntime raises its own Fail/InvalidGraph/RuntimeException types
            if CUDA in providers and "CUDA" in str(e):
                log.warning("CUDA session for %s failed (%s); running on the CPU instead", name, e)
                session = ort.InferenceSession(model, sess_options=_options(threads), providers=[CPU])
            elif isinstance(source, Path):
                raise PackError(f"{source}: onnxruntime cannot load this model ({_first_line(e)}); the file is "
                                "corrupt or incomplete: rebuild the pack with `parley models build <name>`") from e
            else:
                raise
        actual = provider_of(session)
        if device == "cuda" and actual != CUDA:
            log.warning("%s runs on %s, not CUDA (%s)", name, actual, reason)
        log.info("%s: %s, %s intra-op threads", name, actual, threads or default_threads())
        _sessions[key] = session
        return session


def check_loadable(path: str | os.PathLike) -> None:
    """Open one ONNX file in onnxruntime on the CPU and let it go (no session is kept): PackError naming the
    file when it cannot be loaded. A pack's install check runs it on every graph before the pack is moved in."""
    try:
        ort.InferenceSession(str(path), sess_options=_options(1), providers=[CPU])
    except Exception as e:  # onnxruntime's own Fail/InvalidGraph types
        raise PackError(f"{path}: onnxruntime cannot load this graph ({_first_line(e)})") from e


def provider_of(session: ort.InferenceSession) -> str:
    """The execution provider that actually runs the session's nodes first (CUDA or CPU)."""
    return session.get_providers()[0]


def clear_cache() -> None:
    """Forget every cached session (tests; after a pack is rebuilt in place)."""
    with _lock:
        _sessions.clear()


def release_free_memory() -> None:
    """Hand the C heap's free pages back to the OS (glibc ``malloc_trim``; a no-op elsewhere).

    onnxruntime allocates every output and intermediate with malloc (the CPU arena is off), and the
    decoder's K/V outputs grow by one position per step: glibc keeps the freed blocks (~100-200 MB
    after a window), so the encoder's next transient buffers would sit on top of them. Called
    before each encoder run; costs about a millisecond."""
    global _malloc_trim
    if _malloc_trim is None:
        _malloc_trim = False
        if sys.platform.startswith("linux"):
            try:
                import ctypes

                _malloc_trim = ctypes.CDLL("libc.so.6").malloc_trim
                _malloc_trim.argtypes = [ctypes.c_size_t]
            except (OSError, AttributeError) as e:  # musl and others: nothing to trim
                log.debug("no malloc_trim: %s", e)
    if _malloc_trim:
        _malloc_trim(0)


def _first_line(e: Exception) -> str:
    text = str(e).strip().splitlines()
    return text[0][:300] if text else type(e).__name__
