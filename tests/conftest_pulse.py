"""A private PulseAudio server with a null sink, for tests that capture real audio through PortAudio.

Use it from a test module with ``from conftest_pulse import pulse_server  # noqa: F401`` and ask for the
``pulse_server`` fixture. Playing into ``server.sink`` (``paplay --device=parley_test``) is heard on
``server.monitor`` (``parley_test.monitor``), which PortAudio records through its ``pulse`` device with
``PULSE_SOURCE`` set.

Works as root (CI containers): PulseAudio runs in per-user mode (it only warns that it is root) with
HOME, XDG_RUNTIME_DIR and the socket inside a temporary folder, no default script (``-n``), our own
script (``-F``), anonymous auth on the socket and no idle exit. The commands, for a shell:

    mkdir -p "$D/run" "$D/home" && chmod 700 "$D/run"
    printf '%s\\n' "load-module module-native-protocol-unix socket=$D/run/native auth-anonymous=1" \\
        "load-module module-null-sink sink_name=parley_test rate=48000" \\
        "set-default-sink parley_test" "set-default-source parley_test.monitor" > "$D/parley.pa"
    HOME=$D/home XDG_RUNTIME_DIR=$D/run PULSE_RUNTIME_PATH=$D/run \\
        pulseaudio --daemonize=no --exit-idle-time=-1 -n -F "$D/parley.pa" --use-pid-file=no \\
        --log-target=stderr --log-level=error &
    export PULSE_SERVER=unix:$D/run/native

If ``PULSE_SERVER`` already points at a running server (CI starting one in ``.ci/run``), that server is
used and the null sink is loaded into it when missing. With ``PARLEY_REQUIRE_PULSE=1`` a server that
cannot be started fails the test instead of skipping it.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

SINK = "parley_test"


@dataclasses.dataclass(frozen=True)
class PulseServer:
    server: str  # PULSE_SERVER value
    sink: str
    monitor: str
    env: dict  # the environment variables a client process needs


def _pactl(env: dict, *args: str, timeout: float = 5) -> subprocess.CompletedProcess:
    return subprocess.run(["pactl", *args], env={**os.environ, **env}, capture_output=True, text=True,
                          timeout=timeout)


def _ensure_sink(env: dict) -> None:
    names = _pactl(env, "list", "short", "sinks").stdout.split()
    if SINK not in names:
        proc = _pactl(env, "load-module", "module-null-sink", f"sink_name={SINK}", "rate=48000")
        if proc.returncode != 0:
            raise RuntimeError(f"could not load module-null-sink: {proc.stderr.strip()}")


def _start(folder: Path) -> tuple[subprocess.Popen, dict]:
    run = folder / "run"
    (folder / "home").mkdir(parents=True)
    run.mkdir()
    run.chmod(0o700)
    socket = run / "native"
    script = folder / "parley.pa"
    script.write_text(f"load-module module-native-protocol-unix socket={socket} auth-anonymous=1\n"
                      f"load-module module-null-sink sink_name={SINK} rate=48000\n"
                      f"set-default-sink {SINK}\nset-default-source {SINK}.monitor\n")
    server_env = {"HOME": str(folder / "home"), "XDG_RUNTIME_DIR": str(run), "PULSE_RUNTIME_PATH": str(run)}
    with open(folder / "pulseaudio.log", "w") as log:
        proc = subprocess.Popen(["pulseaudio", "--daemonize=no", "--exit-idle-time=-1", "-n", "-F", str(script),
                                 "--use-pid-file=no", "--log-target=stderr", "--log-level=error"],
                                env={**os.environ, **server_env}, stdout=log, stderr=subprocess.STDOUT)
    client_env = {"PULSE_SERVER": f"unix:{socket}"}
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            break
        if socket.exists() and _pactl(client_env, "info").returncode == 0:
            return proc, client_env
        time.sleep(0.1)
    _stop(proc)
    raise RuntimeError("pulseaudio did not start: " + (folder / "pulseaudio.log").read_text()[-800:].strip())


def _unavailable(reason: str):
    if os.environ.get("PARLEY_REQUIRE_PULSE") == "1":
        pytest.fail(reason)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def pulse_server():
    """A PulseAudio server for this test session; PULSE_SERVER is set in os.environ while it runs."""
    for tool in ("pulseaudio", "pactl", "paplay"):
        if shutil.which(tool) is None:
            _unavailable(f"{tool} is not installed (apt install pulseaudio pulseaudio-utils)")
    saved = {k: os.environ.get(k) for k in ("PULSE_SERVER", "PULSE_SOURCE", "PULSE_SINK")}
    proc = None
    folder = tempfile.mkdtemp(prefix="parley-pulse-")
    try:
        if saved["PULSE_SERVER"] and _pactl({}, "info").returncode == 0:
            env = {"PULSE_SERVER": saved["PULSE_SERVER"]}
        else:
            try:
                proc, env = _start(Path(folder))
            except (OSError, RuntimeError, subprocess.SubprocessError) as e:
                _unavailable(f"PulseAudio could not start here: {e}")
        try:
            _ensure_sink(env)
        except (OSError, RuntimeError, subprocess.SubprocessError) as e:
            _unavailable(f"PulseAudio has no usable null sink: {e}")
        os.environ.update(env)
        yield PulseServer(env["PULSE_SERVER"], SINK, f"{SINK}.monitor", env)
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        if proc is not None:
            _stop(proc)
        shutil.rmtree(folder, ignore_errors=True)


def _stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(5)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
