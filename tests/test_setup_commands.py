"""setup.sh installs every system command the app, the tests and the benches run.

The code is scanned statically: every ``subprocess.run/Popen/call/check_call/check_output`` (and an injected
``run``), every ``shutil.which("…")`` and ``os.system``. Each command found must be in setup.sh's
``COMMANDS`` list (installed from ``APT_PKGS`` and named by its self-check when missing), be a Python
interpreter, or be one of the few OPTIONAL commands below. A call whose command the scan cannot name fails
too, so a new dependency cannot slip in through a variable.
"""

from __future__ import annotations

import ast
import re
import shutil
from pathlib import Path

from needs import require_or_skip

ROOT = Path(__file__).resolve().parents[1]
SCANNED = ("engine", "desktop_app", "export", "bench", "scripts", "tests")
RUNNERS = {"run", "Popen", "call", "check_call", "check_output"}
PYTHON = "python"  # sys.executable, or a name bound to another environment's interpreter
# Commands the code runs that setup.sh cannot install, each with why that is fine.
OPTIONAL = {
    "nvidia-smi": "comes with the NVIDIA driver; only GPU detection and the GPU bench run it, and both say "
                  "when it is missing",
}
UNNAMED = "?"
# Test helpers whose first argument is a command name (tests/needs.py); shutil.which inside them is theirs.
HELPERS = {"require_command"}


def setup_commands() -> dict[str, str]:
    """setup.sh's COMMANDS as {command: Debian package}."""
    text = (ROOT / "setup.sh").read_text()
    match = re.search(r'^COMMANDS="([^"]*)"', text, re.M)
    assert match, "setup.sh has no COMMANDS=\"command:package ...\" line"
    return dict(pair.split(":", 1) for pair in match.group(1).split())


def setup_apt_packages() -> set[str]:
    text = (ROOT / "setup.sh").read_text()
    match = re.search(r'^APT_PKGS="([^"]*)"', text, re.M | re.S)
    assert match, "setup.sh has no APT_PKGS=\"...\" line"
    return set(match.group(1).replace("\\\n", " ").split())


def _is_subprocess_call(func: ast.expr) -> bool:
    if isinstance(func, ast.Attribute) and func.attr in RUNNERS:
        owner = func.value
        return (isinstance(owner, ast.Name) and owner.id == "subprocess") or \
            (isinstance(owner, ast.Attribute) and owner.attr == "subprocess")
    return False


def _is_call_to(node: ast.Call, owner: str, name: str) -> bool:
    f = node.func
    return isinstance(f, ast.Attribute) and f.attr == name and isinstance(f.value, ast.Name) and f.value.id == owner


def commands_in(source: str) -> list[tuple[str, int]]:
    """(command, line) for every external command `source` runs or looks up; UNNAMED where the scan cannot
    tell which command a call runs."""
    tree = ast.parse(source)
    bindings: dict[str, list[ast.expr]] = {}
    helper_lines: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign):
            for target in node.targets:
                if isinstance(target, ast.Name):
                    bindings.setdefault(target.id, []).append(node.value)
        elif isinstance(node, ast.For) and isinstance(node.target, ast.Name) and \
                isinstance(node.iter, (ast.List, ast.Tuple)):
            bindings.setdefault(node.target.id, []).extend(node.iter.elts)
        elif isinstance(node, ast.FunctionDef) and node.name in HELPERS:
            helper_lines |= {n.lineno for n in ast.walk(node) if hasattr(n, "lineno")}

    def heads(expr: ast.expr, seen: frozenset = frozenset()) -> set[str]:
        """The command(s) at the head of an argv expression."""
        if isinstance(expr, (ast.List, ast.Tuple)):
            if not expr.elts:
                return {UNNAMED}
            if isinstance(expr.elts[0], ast.Starred):
                return heads(expr.elts[0].value, seen)
            return head(expr.elts[0], seen)
        if isinstance(expr, ast.BinOp) and isinstance(expr.op, ast.Add):
            return heads(expr.left, seen)
        if isinstance(expr, ast.Name) and expr.id in bindings and expr.id not in seen:
            return set().union(*(heads(v, seen | {expr.id}) for v in bindings[expr.id]))
        if isinstance(expr, ast.Constant) and isinstance(expr.value, str):
            return {expr.value.split()[0]} if expr.value.split() else {UNNAMED}
        return {UNNAMED}

    def head(expr: ast.expr, seen: frozenset) -> set[str]:
        """The command named by one argv element."""
        if isinstance(expr, ast.Constant) and isinstance(expr.value, str):
            return {Path(expr.value).name}
        if isinstance(expr, ast.Attribute) and expr.attr == "executable":
            return {PYTHON}
        if isinstance(expr, ast.Call) and isinstance(expr.func, ast.Name) and expr.func.id == "str" and expr.args:
            return head(expr.args[0], seen)
        if isinstance(expr, ast.Call) and _is_call_to(expr, "shutil", "which") and expr.args:
            return head(expr.args[0], seen)
        if isinstance(expr, ast.Name):
            if expr.id in bindings and expr.id not in seen:
                return set().union(*(head(v, seen | {expr.id}) for v in bindings[expr.id]))
            if expr.id == "python":
                return {PYTHON}
        return {UNNAMED}

    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        # a runner passed in (engine.audio.capture.pulse_sources): a local run() called with an argv literal
        injected_run = isinstance(node.func, ast.Name) and node.func.id == "run" and node.args and \
            isinstance(node.args[0], (ast.List, ast.Tuple)) and node.args[0].elts and \
            isinstance(node.args[0].elts[0], ast.Constant) and isinstance(node.args[0].elts[0].value, str)
        helper = isinstance(node.func, ast.Name) and node.func.id in HELPERS and node.args
        if (_is_call_to(node, "shutil", "which") and node.args and node.lineno not in helper_lines) or helper:
            found += [(c, node.lineno) for c in head(node.args[0], frozenset())]
        elif _is_call_to(node, "os", "system") and node.args:
            found += [(c, node.lineno) for c in heads(node.args[0])]
        elif (_is_subprocess_call(node.func) and node.args) or injected_run:
            found += [(c, node.lineno) for c in heads(node.args[0])]
    return found


def scanned_commands() -> dict[str, list[str]]:
    """{command: ["file:line", ...]} over the project's Python sources."""
    out: dict[str, list[str]] = {}
    for folder in SCANNED:
        for path in sorted((ROOT / folder).rglob("*.py")):
            if path == Path(__file__).resolve():
                continue  # its own shutil.which checks setup.sh's list itself
            for command, line in commands_in(path.read_text()):
                out.setdefault(command, []).append(f"{path.relative_to(ROOT)}:{line}")
    return out


def test_the_scan_names_commands_however_they_are_written():
    # Sample code for the scanner (made-up tool names: nothing here is run).
    source = '''
import os, shutil, subprocess, sys
subprocess.run(["example-audio-tool", "a.wav", "b.wav"], check=True)
subprocess.Popen(["/usr/bin/ffmpeg", "-i", "x"])
tool = ["pactl", "--server", "s"]
subprocess.run(tool + ["info"])
exe = shutil.which("espeak-ng")
subprocess.check_call([exe, "-w", "out.wav", "hi"])
cmd = [sys.executable, "-m", "pip"]
subprocess.run(cmd)
shutil.which("example-window-tool")
os.system("convert a.png b.png")
subprocess.run(some_list)
session.run(["logits"], {})
rec, out, calls = run([], 20.0)
for tool in ("pulseaudio", "paplay"):
    shutil.which(tool)
def pulse_sources(run=subprocess.run):
    run(["pw-cli", "ls"])
require_command("Xvfb", "xvfb")
'''
    found = {c for c, _ in commands_in(source)}
    assert found == {"example-audio-tool", "ffmpeg", "pactl", "espeak-ng", PYTHON, "example-window-tool", "convert", UNNAMED,
                     "pulseaudio", "paplay", "pw-cli", "Xvfb"}


def test_every_command_the_code_runs_is_installed_by_setup():
    allowed = set(setup_commands()) | set(OPTIONAL) | {PYTHON}
    found = scanned_commands()
    # The scan must see the commands we know are there, or it has silently stopped working.
    assert {"espeak-ng", "pactl", "paplay", "pulseaudio"} <= set(found), sorted(found)
    unnamed = found.pop(UNNAMED, [])
    assert not unnamed, ("these calls run a command the scan cannot name; build the argv from a literal "
                         f"(or shutil.which(\"...\")) so it can be checked: {unnamed}")
    missing = {c: where for c, where in found.items() if c not in allowed}
    assert not missing, ("the code runs commands setup.sh does not install; add each to COMMANDS (and its "
                         f"package to APT_PKGS) in setup.sh, or stop using it: {missing}")


def test_setup_installs_the_package_of_every_command_it_checks():
    packages = setup_apt_packages()
    commands = setup_commands()
    assert commands, "setup.sh's COMMANDS is empty"
    assert {c: p for c, p in commands.items() if p not in packages} == {}
    text = (ROOT / "setup.sh").read_text()
    assert 'for pair in $COMMANDS' in text, "setup.sh's self-check no longer walks COMMANDS"


def test_every_command_setup_checks_is_on_this_machine():
    missing = {c: p for c, p in setup_commands().items() if shutil.which(c) is None}
    if missing:
        require_or_skip(f"not installed here (run ./setup.sh): {missing}")


def test_a_hung_test_fails_instead_of_holding_ci(pytestconfig):
    """pytest-timeout (the dev extra) is loaded and pyproject.toml gives every test a limit."""
    assert pytestconfig.pluginmanager.hasplugin("timeout"), "pytest-timeout is not installed: pip install -e '.[dev]'"
    assert 0 < float(pytestconfig.getini("timeout")) <= 1800


MACHINE_PATH = re.compile(r"(?<![\w.~-])/(?:work|root|home/[\w.-]+|Users/[\w.-]+|mnt/[\w.-]+|tmp)/")
# Where a /tmp path is not a folder of this machine: a results file records the command exactly as it was run,
# and the pack-safety tests feed hostile names ("/tmp/evil") to the installer.
TMP_ALLOWED = ("docs/results/", "tests/engine/test_pack_safety.py")


def _machine_path(rel: str, line: str) -> bool:
    match = MACHINE_PATH.search(line)
    if match and match.group(0) == "/tmp/" and rel.startswith(TMP_ALLOWED):
        return bool(MACHINE_PATH.search(line[match.end():]))
    return bool(match)


def test_no_file_names_a_folder_of_one_machine():
    """Code, tests and docs name paths relative to the repository or the user's cache, never one machine's."""
    offenders = []
    for folder in (*SCANNED, "docs"):
        for path in sorted((ROOT / folder).rglob("*")):
            if path.suffix not in (".py", ".md", ".sh", ".toml", ".json") or path == Path(__file__).resolve():
                continue
            rel = str(path.relative_to(ROOT))
            for number, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
                if _machine_path(rel, line):
                    offenders.append(f"{rel}:{number}: {line.strip()[:100]}")
    for name in ("README.md", "setup.sh", "pyproject.toml"):
        offenders += [f"{name}:{n}" for n, line in enumerate((ROOT / name).read_text().splitlines(), 1)
                      if _machine_path(name, line)]
    assert not offenders, "absolute paths of one machine:\n" + "\n".join(offenders)


# Skips that stay skips in CI, each with why: everything else a test needs, setup.sh installs, so a test
# must say so with tests/needs.py (skip locally, fail under PARLEY_REQUIRE_MODELS=1).
ALLOWED_SKIPS = {
    "tests/needs.py": "the helper itself: it fails instead under PARLEY_REQUIRE_MODELS=1",
    "tests/conftest_pulse.py": "fails instead under PARLEY_REQUIRE_PULSE=1",
    "tests/engine/test_gpu_check_bench.py": "checks the no-GPU path, which a machine with a GPU cannot take",
    "tests/desktop_app/test_models_and_drop.py": "checks the no-GPU path, which a machine with a GPU cannot take",
    "tests/engine/test_runtime.py": "a glibc-only check (skipif) on other platforms",
}


def test_no_test_skips_on_its_own():
    found = []
    for path in sorted((ROOT / "tests").rglob("*.py")):
        rel = str(path.relative_to(ROOT))
        if rel in ALLOWED_SKIPS:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Attribute) and node.attr in ("skip", "importorskip", "skipif") and \
                    isinstance(node.value, (ast.Name, ast.Attribute)) and \
                    ast.unparse(node.value) in ("pytest", "pytest.mark"):
                found.append(f"{rel}:{node.lineno}")
    assert not found, ("these skip by themselves, so CI would pass a broken setup as 'skipped'; use "
                       f"tests/needs.py (require_command / require_module / require_or_skip): {found}")
