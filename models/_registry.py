"""A small, strict model registry.

Each model family registers a builder under a unique name. Unknown names raise
``ValueError`` listing the valid ones; a duplicate registration raises too.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Callable

from torch import nn

__all__ = ["ModelEntry", "register_model", "create_model", "list_models", "get_entry", "config_from_dict", "with_config"]


@dataclass(frozen=True)
class ModelEntry:
    """What the registry knows about one model name."""

    name: str
    builder: Callable[..., nn.Module]  # builder(config) -> nn.Module
    config_cls: type  # a frozen dataclass
    default_config: Any  # instance of config_cls
    description: str


_REGISTRY: dict[str, ModelEntry] = {}


def register_model(name: str, config_cls: type, default_config: Any, description: str):
    """Decorator registering ``builder(config) -> nn.Module`` under ``name``."""

    def deco(builder: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        if name in _REGISTRY:
            raise ValueError(f"model {name!r} is already registered")
        if not dataclasses.is_dataclass(config_cls) or not config_cls.__dataclass_params__.frozen:
            raise TypeError(f"config of {name!r} must be a frozen dataclass")
        _REGISTRY[name] = ModelEntry(name, builder, config_cls, default_config, description)
        return builder

    return deco


def list_models() -> list[str]:
    """Registered model names, sorted."""
    return sorted(_REGISTRY)


def get_entry(name: str) -> ModelEntry:
    """Registry entry for ``name``.

    Raises:
        ValueError: ``name`` is not registered (the message lists valid names).
    """
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ValueError(f"unknown model {name!r}; valid models: {', '.join(list_models())}") from None


def config_from_dict(name: str, values: dict[str, Any] | None, *, base: str = "default") -> Any:
    """Build the model's config dataclass from a plain dict (e.g. a JSON manifest).

    Lists become tuples so that the frozen config stays hashable. Fields the dict leaves
    out come from the model's registered default config (``base="default"``: the variant
    the project ships), or (``base="fields"``, for manifests: a manifest written before a
    field existed meant the behaviour before it) from the config class's
    ``ABSENT_FIELD_VALUES`` where it declares one, else from the dataclass's own field
    defaults.

    Raises:
        ValueError: unknown model, or a key that the config does not have.
    """
    entry = get_entry(name)
    if base not in ("default", "fields"):
        raise ValueError(f"base must be 'default' or 'fields', not {base!r}")
    absent = dict(getattr(entry.config_cls, "ABSENT_FIELD_VALUES", {}))
    if not values:
        return entry.default_config if base == "default" else entry.config_cls(**absent)
    fields = {f.name for f in dataclasses.fields(entry.config_cls)}
    unknown = sorted(set(values) - fields)
    if unknown:
        raise ValueError(f"config of {name!r} has no field(s) {unknown}; valid: {sorted(fields)}")
    clean = {k: tuple(v) if isinstance(v, list) else v for k, v in values.items()}
    if base == "fields":
        return entry.config_cls(**{**absent, **clean})
    return dataclasses.replace(entry.default_config, **clean)


def create_model(name: str, config: Any | None = None, **overrides: Any) -> nn.Module:
    """Instantiate a registered model with random weights.

    Args:
        name: registered model name (see :func:`list_models`).
        config: a config dataclass instance or a dict of fields; ``None`` for the default.
        **overrides: fields replaced on top of ``config``.

    Raises:
        ValueError: unknown model name or config field.
        TypeError: ``config`` is of another model's config type.
    """
    entry = get_entry(name)
    if config is None or isinstance(config, dict):
        config = config_from_dict(name, config)
    if not isinstance(config, entry.config_cls):
        raise TypeError(f"{name!r} takes a {entry.config_cls.__name__}, got {type(config).__name__}")
    if overrides:
        config = config_from_dict(name, {**dataclasses.asdict(config), **overrides})
    return entry.builder(config)


def with_config(name: str, model: nn.Module, **changes: Any) -> nn.Module:
    """A model of the same weights with config fields replaced (e.g. lite's ``scale``),
    on the same device, in eval mode. Returns ``model`` itself when nothing changes.

    Raises:
        ValueError: a field the config does not have, or weights that no longer fit.
    """
    cfg = model.cfg
    if all(getattr(cfg, k, object()) == v for k, v in changes.items()):
        return model
    variant = create_model(name, config_from_dict(name, {**dataclasses.asdict(cfg), **changes}))
    try:
        variant.load_state_dict(model.state_dict(), strict=True)
    except RuntimeError as err:
        raise ValueError(f"{name}: weights do not fit the config {changes}: {err}") from err
    param = next(model.parameters(), None)
    if param is not None:
        variant.to(param.device)
    return variant.eval()
