"""Loads a Python file by its path, the way verl loads custom reward functions and samplers
(importlib spec_from_file_location), so the tests import our GPU-host files as the tools do."""

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def load_file(relative: str, name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / relative)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
