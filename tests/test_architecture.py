"""The packages depend one way: models <- realtime (the runtime) <- calibrate, training <- CLI.

Checked twice: by importing each package in a fresh interpreter and listing what it
pulled in, and by reading every import statement of the lower packages (an import
inside a function only runs when called, so the first check alone would miss it).
"""
from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("models", "realtime", "calibrate", "training")
#: what each package may import from the others
ALLOWED = {
    "models": set(),
    "realtime": {"models"},
    "calibrate": {"models", "realtime"},
    "training": {"models", "realtime"},
}


def _loaded_after_import(package: str) -> set[str]:
    code = f"import sys, {package}; print(' '.join(sorted({{m.split('.')[0] for m in sys.modules}})))"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    return set(out.split()) & set(PACKAGES)


@pytest.mark.parametrize("package", PACKAGES)
def test_importing_a_package_pulls_in_only_the_packages_below_it(package):
    assert _loaded_after_import(package) - {package} <= ALLOWED[package]


def _imported_packages(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module.split(".")[0])
    return found & set(PACKAGES)


@pytest.mark.parametrize("package", PACKAGES)
def test_no_module_imports_upwards_even_inside_functions(package):
    wrong = {}
    for path in sorted((ROOT / package).rglob("*.py")):
        bad = _imported_packages(path) - ALLOWED[package] - {package}
        if bad:
            wrong[str(path.relative_to(ROOT))] = sorted(bad)
    assert not wrong, f"imports against the dependency direction: {wrong}"


def test_every_error_the_product_raises_on_purpose_has_one_root():
    import calibrate
    import models
    import realtime
    import run_stream
    from models.errors import LowlightError

    from training.data import DataError
    from training.evaluate import EvaluationError
    from training.train import RecipeError

    for err in (models.CheckpointError, realtime.PipelineError, realtime.BackendUnavailableError, realtime.ValidationFailed,
                realtime.CalibrationError, realtime.ExportError, calibrate.CalibrateError, run_stream.UsageError,
                DataError, RecipeError, EvaluationError):
        assert issubclass(err, LowlightError), err
    assert calibrate.BackendUnavailable is realtime.BackendUnavailableError
    # a backend that fails validation is a usage problem said in one line (exit 2)
    assert realtime.ValidationFailed("x").exit_code == 2
