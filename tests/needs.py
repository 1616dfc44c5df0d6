"""What a test needs from the machine: a system command, an optional package, a model.

Locally a missing piece skips the test (with the reason and how to install it). Under
PARLEY_REQUIRE_MODELS=1 (CI, after ./setup.sh) it fails it: there setup.sh has installed everything, so a
missing piece is a broken setup that must not pass as "skipped". Use these instead of ``pytest.skip`` /
``pytest.importorskip`` for anything setup.sh provides. (A module of its own, not conftest.py: two
conftest modules exist and ``from conftest import`` could pick the wrong one.)
"""

from __future__ import annotations

import importlib
import os
import shutil
from types import ModuleType
from typing import NoReturn

import pytest


def require_or_skip(reason: str) -> NoReturn:
    """Skip a test whose tool, package or model is missing — or fail it under PARLEY_REQUIRE_MODELS=1 (CI),
    where setup.sh has installed everything and a missing piece is a broken setup, not a reason to skip."""
    if os.environ.get("PARLEY_REQUIRE_MODELS") == "1":
        pytest.fail(f"{reason} (PARLEY_REQUIRE_MODELS=1: ./setup.sh installs it)", pytrace=False)
    pytest.skip(reason, allow_module_level=True)


def require_command(name: str, package: str) -> str:
    """The path of a system command setup.sh installs; skips (or fails in CI) when it is missing."""
    path = shutil.which(name)
    if path is None:
        require_or_skip(f"{name} is not installed (apt-get install {package})")
    return path


def require_module(name: str, extra: str = "export") -> ModuleType:
    """importorskip that fails under PARLEY_REQUIRE_MODELS=1: `name` comes with Parley's `extra`."""
    try:
        return importlib.import_module(name)
    except ImportError as e:
        require_or_skip(f"{name} cannot be imported ({e}); install it with pip install -e '.[{extra}]'")
