"""The one-way street: engine never imports torch, PySide6, export or desktop_app."""

import subprocess
import sys
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
