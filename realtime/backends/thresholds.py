"""The acceptance thresholds of a backend against eager FP32, in one place."""
from __future__ import annotations

#: minimum PSNR (dB) of a backend's uint8 output against eager FP32 on the same frames.
MIN_PSNR_DB: float = 45.0
#: largest allowed difference of any uint8 output value against eager FP32 (out of 255).
MAX_ABS_DIFF_U8: int = 4
#: frames used to validate a backend (LOL eval15 low images, else demo frames).
VALIDATION_FRAMES: int = 3
#: warm-up calls made right after building a compiled backend.
BUILD_WARMUP: int = 3
