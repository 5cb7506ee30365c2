"""The scripts in benchmarks/ loaded as modules, for tests of their bookkeeping (no Docker)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"
# What benchmarks/machine.py records, for results files made up in tests.
MACHINE = {"cores": 2, "memory_bytes": 24 * 1024**3, "os": "Debian", "docker": "20.10", "cgroup": "1"}


def load_benchmark(script: str, module_name: str) -> ModuleType:
    """benchmarks/<script> as `module_name` (the scripts import benchmarks/machine.py by its name)."""
    if str(BENCHMARKS) not in sys.path:
        sys.path.insert(0, str(BENCHMARKS))
    spec = importlib.util.spec_from_file_location(module_name, BENCHMARKS / script)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module
