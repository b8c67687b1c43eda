"""What shattering knows about a model before building it: one :class:`ModelInfo` per model, the built-in
ones of the paper (Section 2, Appendix A, Table 1) registered through the same :func:`register_model` a user
calls."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from torch import nn

from ..errors import ConfigError
from ..validation import must_be


@dataclass(frozen=True)
class ModelInfo:
    """A model by name: how to build it and the facts the rest of shattering asks of it.

    ``factory(input_shape, num_classes, dropout=0.0, **options)`` returns an ``nn.Module`` for inputs of shape
    (C, H, W). ``lr`` is the default initial learning rate (the paper's, Section 2.1, for its models);
    ``paper_params`` Table 1's parameter count at 28x28x3 and 10 classes (None: not a Table 1 model);
    ``convolutional`` decides the memory layout (channels_last) and the CPU evaluation batch; ``packable``
    says that many runs of it may be trained as one packed model (only MLPs: see ``executors/packing.py``);
    ``min_side`` is the smallest image side it accepts; ``needs`` names the optional extra it imports."""

    name: str
    factory: Callable[..., nn.Module]
    lr: float
    paper_params: int | None = None
    convolutional: bool = False
    packable: bool = False
    min_side: int = 1
    needs: str | None = None
    description: str = ""


MODELS: dict[str, ModelInfo] = {}


def register_model(name: str, factory: Callable[..., nn.Module], *, lr: float, paper_params: int | None = None,
                   convolutional: bool = False, packable: bool = False, min_side: int = 1, needs: str | None = None,
                   description: str = "") -> ModelInfo:
    """Make ``name`` a model every command and function accepts. A name already registered is refused."""
    if not isinstance(name, str) or not name or name != name.strip():
        raise ConfigError(must_be("name", "a non-empty string without surrounding spaces", name, of="register_model"))
    if name in MODELS:
        raise ConfigError(f"A model named {name!r} is registered already; choose another name.")
    if not callable(factory):
        raise ConfigError(must_be("factory", f"callable (the factory of model {name!r})", factory, of="register_model",
                                  shown=type(factory).__name__))
    info = ModelInfo(name, factory, float(lr), paper_params, convolutional, packable, min_side, needs, description)
    MODELS[name] = info
    return info


def model_names() -> tuple[str, ...]:
    """Every registered model's name, built-in ones first."""
    return tuple(MODELS)


def model_info(name: str) -> ModelInfo:
    """The :class:`ModelInfo` of ``name``; an unknown name gets one sentence listing the known ones."""
    try:
        return MODELS[name]
    except (KeyError, TypeError):
        raise ConfigError(f"Unknown model {name!r}; known models: {', '.join(MODELS)}.") from None
