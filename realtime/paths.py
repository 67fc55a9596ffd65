"""Where the project's shared data lives: the one lookup for code, tests and benchmarks.

``$LOWLIGHT_SHARED`` if set, else ``../shared`` beside the checkout. It holds
``data/lol`` (LOL eval15 and our485 pairs), ``data/video`` (real dark clips) and
``peers`` (published weights of other methods). Nothing is ever downloaded; callers
that need a folder that is absent say so (tests and benchmarks skip).
"""
from __future__ import annotations

import os
from pathlib import Path

__all__ = ["SHARED_ENV", "shared_root", "lol_root", "video_root", "peers_root"]

#: environment variable that points at the shared folder.
SHARED_ENV = "LOWLIGHT_SHARED"


def shared_root() -> Path:
    """``$LOWLIGHT_SHARED``, or the ``shared`` folder beside the checkout."""
    env = os.environ.get(SHARED_ENV)
    return Path(env) if env else Path(__file__).resolve().parents[2] / "shared"


def lol_root() -> Path:
    """The LOL dataset: ``eval15/`` and ``our485/``, each with ``low/`` and ``high/``."""
    return shared_root() / "data" / "lol"


def video_root() -> Path:
    """Real dark clips."""
    return shared_root() / "data" / "video"


def peers_root() -> Path:
    """Published weights of other methods (Zero-DCE++, SCI, ...), for comparisons."""
    return shared_root() / "peers"
