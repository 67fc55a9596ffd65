"""Shared test fixtures: device selection, RNG isolation, paths to ../shared data."""
from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest
import torch

from realtime.paths import lol_root, shared_root

ROOT = Path(__file__).resolve().parents[1]
SHARED = shared_root()
LOL = lol_root()


def pytest_collection_modifyitems(config, items):
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU (torch.cuda.is_available() is False)")
    for item in items:
        if "needs_cuda" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(autouse=True)
def _isolated_rng():
    """Every test starts from the same seeds and leaves global RNG state as it found it."""
    np_state = np.random.get_state()
    py_state = random.getstate()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        np.random.seed(0)
        random.seed(0)
        yield
    np.random.set_state(np_state)
    random.setstate(py_state)


@pytest.fixture(scope="session")
def weights(tmp_path_factory) -> Path:
    """A randomly initialised ``lite`` checkpoint (seed 0): fast, no shipped weights needed."""
    import models

    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("w") / "lite.pt"
    models.save_checkpoint(models.create_model("lite"), "lite", path)
    return path


@pytest.fixture
def lol_root() -> Path:
    if not (LOL / "our485" / "low").is_dir():
        pytest.skip(f"LOL data not found under {LOL}")
    return LOL


@pytest.fixture
def shared_dir() -> Path:
    if not SHARED.is_dir():
        pytest.skip(f"shared data not found at {SHARED}")
    return SHARED
