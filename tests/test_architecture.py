"""The one-way street: engine never imports torch, PySide6, export or desktop_app; no module is dead (nothing
imports it) and no two files import each other, directly or round a cycle."""

import ast
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_engine_imports_no_torch_qt_or_export():
    # every module of every room (engine/packs/install.py → engine.packs.install), not only the packages
    modules = sorted(".".join(p.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
                     for p in (ROOT / "engine").rglob("*.py") if p.name != "__main__.py")
    code = (
        "import importlib, sys\n"
        f"for m in {modules!r}:\n"
        "    importlib.import_module(m)\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in "
        "('torch', 'PySide6', 'export', 'desktop_app', 'transformers'))\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "", f"engine pulled in: {out.stdout.strip()}"
    assert len(modules) >= 5


def test_desktop_app_does_not_import_torch_or_export():
    code = (
        "import sys, desktop_app.launcher\n"
        "import importlib.util\n"
        "if importlib.util.find_spec('desktop_app.app'): import desktop_app.app\n"
        "print(','.join(sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'export'))))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True,
                         env={"QT_QPA_PLATFORM": "offscreen", "PATH": "/usr/bin:/bin"})
    assert out.stdout.strip() == ""


# -- the import graph, read from the source (no module is imported) --------------------------------------------

def _module(path: Path) -> str:
    return ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")


def _imports(path: Path, top_level_only: bool) -> set[str]:
    """The dotted names a file imports (`from a import b` gives a and a.b), relative imports resolved; with
    top_level_only, only the imports run when the module is imported (not those inside functions)."""
    me = _module(path)
    package = me if path.name == "__init__.py" else me.rpartition(".")[0]
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    nodes = ast.walk(tree) if not top_level_only else _module_level(tree.body)
    names: set[str] = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[:len(package.split(".")) - node.level + 1]
                base = ".".join(parts + ([node.module] if node.module else []))
            names.add(base)
            names.update(f"{base}.{a.name}" for a in node.names)
    return names


def _module_level(body: list[ast.stmt]):
    for node in body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            continue
        yield node
        for field in ("body", "orelse", "handlers", "finalbody"):
            yield from _module_level([n for n in getattr(node, field, []) if isinstance(n, ast.stmt)])


def _app_modules() -> dict[str, Path]:
    return {_module(p): p for package in ("engine", "desktop_app") for p in (ROOT / package).rglob("*.py")}


def test_every_module_is_imported_by_something():
    """A module of engine/ or desktop_app/ that no code, bench, script or test imports (and that is no entry
    point) is dead: it is reported by name."""
    modules = _app_modules()
    imported: set[str] = set()
    for folder in ("engine", "desktop_app", "export", "bench", "tests", "scripts"):
        for path in (ROOT / folder).rglob("*.py"):
            for name in _imports(path, top_level_only=False):
                parts = name.split(".")
                imported.update(".".join(parts[:i]) for i in range(1, len(parts) + 1))  # a.b.c imports a, a.b
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    entry_points = {target.split(":")[0] for target in scripts.values()}
    unused = sorted(m for m in modules if m not in imported | entry_points and not m.endswith("__main__"))
    assert unused == [], f"modules nothing imports: {', '.join(unused)}"


def test_no_import_cycles_between_files():
    """Module-level imports between the files of engine/ and desktop_app/ form no cycle (an import inside a
    function, which runs later, is not counted; a package's __init__ is not counted for its submodules)."""
    modules = _app_modules()
    graph = {m: {n for n in _imports(p, top_level_only=True) if n in modules and n != m
                 and not m.startswith(n + ".")} for m, p in modules.items()}
    cycles: list[list[str]] = []
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(m: str, path: list[str]) -> None:
        state[m] = 1
        for n in sorted(graph[m]):
            if state.get(n) == 1:
                cycles.append(path[path.index(n):] + [n])
            elif n not in state:
                visit(n, path + [n])
        state[m] = 2

    for m in sorted(graph):
        if m not in state:
            visit(m, [m])
    assert cycles == [], "import cycles: " + "; ".join(" → ".join(c) for c in cycles)


# Each room of engine/ on a level: a file imports (at module level or inside a function) only from its own room
# and from rooms on lower levels, so the arrows of docs/architecture.md's picture point one way. A new room (or
# flat module) gets its level here.
LEVELS = {
    "engine.errors": 0,
    "engine.events": 1, "engine.features": 1, "engine.metrics": 1, "engine.runtime": 1, "engine.subtitles": 1,
    "engine.packs": 2, "engine.seq2seq": 2, "engine.glossary": 2,
    "engine.learn_words": 3,
    "engine.audio": 3,
    "engine.whisper": 4, "engine.translate": 4,
    "engine.live": 5, "engine.file_translation": 5, "engine.corrections": 5, "engine.logfile": 5,
    "engine.jobs": 6,
    "engine.cli": 7, "engine.__main__": 8,
}


def _room(module: str) -> str:
    parts = module.split(".")
    return ".".join(parts[:2]) if len(parts) > 1 else module


def test_rooms_import_only_rooms_below_them():
    engine = {m: p for m, p in _app_modules().items() if m.startswith("engine.")}
    unplaced = sorted({_room(m) for m in engine} - set(LEVELS))
    assert unplaced == [], f"rooms without a level in LEVELS: {', '.join(unplaced)}"
    upward = []
    for m, path in sorted(engine.items()):
        mine = _room(m)
        for name in _imports(path, top_level_only=False):
            other = _room(name)
            if name.startswith("engine.") and other in LEVELS and other != mine and LEVELS[other] >= LEVELS[mine]:
                upward.append(f"{m} → {name}")
    assert upward == [], "imports up or sideways between rooms: " + "; ".join(sorted(set(upward)))


def test_every_onnxruntime_session_comes_from_the_one_factory():
    """engine/runtime.py opens every session (providers, threads, the provider that runs logged); nothing else
    in engine/ constructs an onnxruntime.InferenceSession."""
    others = []
    for path in sorted((ROOT / "engine").rglob("*.py")):
        if path == ROOT / "engine" / "runtime.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            if isinstance(node, ast.Call) and (getattr(node.func, "attr", None) or getattr(node.func, "id", None)) \
                    == "InferenceSession":
                others.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert others == [], f"onnxruntime sessions opened outside engine/runtime.py: {', '.join(others)}"
