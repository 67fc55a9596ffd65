"""Enhancement networks and their registry.

    >>> from models import create_model, list_models, load_pretrained
    >>> list_models()
    ['blnet', 'lite', 'sri']
"""
from ._base import EnhancementModel
from .errors import LowlightError
from ._layers import pad_to_multiple
from ._registry import ModelEntry, config_from_dict, create_model, get_entry, list_models, register_model, with_config
from . import blnet as _blnet  # noqa: F401  (registers "blnet")
from . import lite as _lite  # noqa: F401  (registers "lite")
from . import sri as _sri  # noqa: F401  (registers "sri")
from .blnet import BLNet, BLNetConfig, NCBCFeatures
from .checkpoint import (
    WEIGHTS_DIR,
    CheckpointError,
    available_pretrained,
    load_checkpoint,
    load_pretrained,
    read_manifest,
    save_checkpoint,
)
from .lite import GRID_ROWS, LiteConfig, LiteNet, grid_scale, lite_coefficients
from .sri import SRIConfig, SRINet

__all__ = [
    "EnhancementModel",
    "LowlightError",
    "ModelEntry",
    "register_model",
    "create_model",
    "get_entry",
    "list_models",
    "config_from_dict",
    "with_config",
    "grid_scale",
    "GRID_ROWS",
    "pad_to_multiple",
    "BLNet",
    "BLNetConfig",
    "NCBCFeatures",
    "SRINet",
    "SRIConfig",
    "LiteNet",
    "LiteConfig",
    "lite_coefficients",
    "WEIGHTS_DIR",
    "CheckpointError",
    "save_checkpoint",
    "load_checkpoint",
    "load_pretrained",
    "read_manifest",
    "available_pretrained",
]
