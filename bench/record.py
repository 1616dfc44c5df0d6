"""Where a bench keeps its work, and how it records a result.

A result is two files in docs/results/ (committed): ``<name>.json`` (the numbers) and ``<name>.md`` (the
table as the README or docs show it). Both say when and where they were made: the date, the machine (cores,
CPU model, memory, load), the versions (Python, Parley's commit, the packages that ran) and the exact command,
so a figure quoted in the README can be traced to the run that produced it and re-run.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import platform
import shlex
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "docs" / "results"
BASE_PACKAGES = ("numpy", "onnxruntime", "onnxruntime-gpu", "tokenizers")


def work_dir(name: str) -> Path:
    """``<Parley's cache>/bench/<name>``: what a bench builds once and reuses (packs, synthesised speech)."""
    from engine.packs.paths import parley_home

    return parley_home() / "bench" / name


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine() -> dict:
    memory_gb = None
    try:
        memory_gb = round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1)
    except (ValueError, OSError, AttributeError):
        pass
    return {"cores": os.cpu_count(), "cpu": cpu_model(), "memory_gb": memory_gb,
            "system": f"{platform.system()} {platform.release()}",
            "load_average": [round(x, 2) for x in os.getloadavg()]}


def git_commit(root: Path = ROOT) -> str | None:
    """The checked-out commit, read from .git (no git command needed)."""
    git = root / ".git"
    try:
        head = (git / "HEAD").read_text().strip()
        if not head.startswith("ref: "):
            return head[:12]
        ref = head[5:]
        if (git / ref).is_file():
            return (git / ref).read_text().strip()[:12]
        for line in (git / "packed-refs").read_text().splitlines():
            if line.endswith(" " + ref):
                return line.split()[0][:12]
    except OSError:
        pass
    return None


def versions(packages: tuple[str, ...] = ()) -> dict:
    out = {"python": platform.python_version(), "parley_commit": git_commit()}
    for name in BASE_PACKAGES + tuple(packages):
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            pass
    return out


def command_line(argv: list[str] | None = None) -> str:
    """The command as typed from the repository root: ``.venv/bin/python bench/x.py --flag …``."""
    argv = sys.argv if argv is None else argv
    script = Path(argv[0]).resolve()
    script_s = str(script.relative_to(ROOT)) if script.is_relative_to(ROOT) else script.name
    python = Path(sys.executable)
    venv = ROOT / ".venv"
    python_s = ".venv/bin/python" if python.is_relative_to(venv) or python.resolve().is_relative_to(venv) else "python"
    return shlex.join([python_s, script_s, *argv[1:]])


def stamp() -> str:
    return time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())


def header(packages: tuple[str, ...] = (), command: str | None = None) -> dict:
    """date, command, machine and versions: the fields every results file starts with."""
    return {"date": stamp(), "command": command or command_line(), "machine": machine(),
            "versions": versions(packages)}


def describe(head: dict) -> str:
    m, v = head["machine"], head["versions"]
    names = ", ".join(f"{k} {val}" for k, val in v.items() if k not in ("python", "parley_commit"))
    return (f"{head['date']}, {m['cores']} cores ({m['cpu']}), load average {m['load_average'][0]} at the end; "
            f"Python {v['python']}, Parley {v['parley_commit']}, {names}.")


def write(out: Path, title: str, data: dict, table: str, packages: tuple[str, ...] = (),
          command: str | None = None) -> Path:
    """``out`` (JSON: the header fields then ``data``) and the same name with ``.md`` (title, header, table)."""
    head = header(packages, command)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({**head, **data}, indent=1, ensure_ascii=False) + "\n")
    out.with_suffix(".md").write_text(f"# {title}\n\n{describe(head)}\n\n    {head['command']}\n\n{table.rstrip()}\n")
    return out


def shown(path) -> str:
    """A path as a results file may show it: inside Parley's cache as ``<cache>/…``, inside the repository
    relative to it, else its name (never one machine's absolute folder)."""
    from engine.packs.paths import parley_home

    p = Path(path).expanduser().resolve()
    for root, label in ((parley_home().resolve(), "<cache>"), (ROOT, ".")):
        if p.is_relative_to(root):
            return str(Path(label) / p.relative_to(root))
    return f"<{p.name}>"


def wrap(out: Path, title: str, script_args: list[str], keep_lines: int = 40) -> int:
    """Run a bench script that prints its result (``script_args``: the script, relative to the repository root,
    and its arguments) with this Python, echo its output, and record the last ``keep_lines`` lines of it with
    the header. Returns the bench's exit code."""
    proc = subprocess.Popen([sys.executable, *script_args], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines = []
    for line in proc.stdout:
        sys.stdout.write(line)
        sys.stdout.flush()
        lines.append(line.rstrip("\n"))
    code = proc.wait()
    tail = lines[-keep_lines:]
    write(out, title, {"exit_code": code, "output": tail}, "```\n" + "\n".join(tail) + "\n```",
          command=command_line([str(ROOT / script_args[0]), *script_args[1:]]))
    return code


def main() -> int:
    ap = argparse.ArgumentParser(description="record a bench that prints its result: "
                                             "bench/record.py --out docs/results/NAME.json --title T -- bench/SCRIPT.py ARGS ...")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--title", required=True)
    ap.add_argument("argv", nargs=argparse.REMAINDER)
    args = ap.parse_args()
    argv = args.argv[1:] if args.argv[:1] == ["--"] else args.argv
    if not argv:
        ap.error("no command after --")
    return wrap(args.out, args.title, argv)


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    sys.exit(main())
