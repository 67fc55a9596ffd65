"""The tuner's settings, in one place (a backend's accuracy thresholds are the runtime's:
:mod:`realtime.backends.thresholds`)."""
from __future__ import annotations

#: a configuration meets the target when this latency statistic fits in 1/fps.
TARGET_STAT: str = "median"
#: timed iterations per candidate by default (the CLI can change it).
DEFAULT_ITERS: int = 20
#: untimed warm-up calls per candidate (CUDA graphs record after a few calls).
DEFAULT_WARMUP: int = 3
