"""What shattering knows about a model before building it: one :class:`ModelInfo` per model, the built-in
ones of the paper (Section 2, Appendix A, Table 1) registered through the same :func:`register_model` a user
calls."""

from __future__ import annotations

import dataclasses
import importlib
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..errors import ConfigError
from ..validation import must_be

if TYPE_CHECKING:
    from torch import nn


@dataclass(frozen=True)
class ModelInfo:
    """A model by name: how to build it and the facts the rest of shattering asks of it.

    ``factory(input_shape, num_classes, **options)`` returns an ``nn.Module`` for inputs of shape (C, H, W); it
    gets ``dropout=...`` too where it takes a ``dropout`` argument (every built-in factory does). ``lr`` is the
    default initial learning rate (the paper's, Section 2.1, for its models);
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


# --------------------------------------------------------------------------------------------------
# The researcher's own models: by import path (``package.module:factory``) or by object
# --------------------------------------------------------------------------------------------------

# A user model's initial learning rate unless it declares one (a ModelInfo) or --lr is given: the paper's rate
# for its models without batch norm (Section 2.1), stated in every run's schedule line.
USER_LR = 0.01
FACTORY_CALL = "factory(input_shape, num_classes, **model_args), plus dropout=... where it takes a dropout argument"


def is_import_path(name: object) -> bool:
    """True for ``package.module:attr`` (the form of uvicorn apps and setuptools entry points)."""
    if not isinstance(name, str) or name.count(":") != 1:
        return False
    module, attr = name.split(":")
    return bool(module) and bool(attr) and all(part.isidentifier() for part in (*module.split("."), *attr.split(".")))


def _imported(spec: str) -> ModelInfo:
    """The :class:`ModelInfo` of the model at import path ``spec``: a ModelInfo there is used as it is (renamed to
    ``spec``); a factory (function or class) gets :data:`USER_LR` and is never packed."""
    module_name, attr = spec.split(":")
    if os.getcwd() not in sys.path:  # a module in the folder the command runs in is found (as uvicorn does)
        sys.path.append(os.getcwd())
    try:
        obj = importlib.import_module(module_name)
    except Exception as exc:  # any failure while importing the user's module is theirs to fix
        raise ConfigError(f"Model {spec!r}: module {module_name!r} could not be imported ({type(exc).__name__}: "
                          f"{exc}); make it importable (install it, or put its folder on PYTHONPATH).") from None
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise ConfigError(f"Model {spec!r}: module {module_name!r} has no attribute {attr!r}; name a function "
                              f"or class in it that builds the model, as module:attr.")
        obj = getattr(obj, part)
    if isinstance(obj, ModelInfo):
        return dataclasses.replace(obj, name=spec)
    if not callable(obj):
        raise ConfigError(f"Model {spec!r} is a {type(obj).__name__}, not a factory; name a function or class "
                          f"called as {FACTORY_CALL} that returns an nn.Module.")
    return ModelInfo(spec, obj, lr=USER_LR, description=f"user model {spec}")


def model_info(name: str) -> ModelInfo:
    """The :class:`ModelInfo` of ``name``: a registered model, or one at an import path ``package.module:attr``
    (imported on first use); anything else gets one sentence listing the known names."""
    try:
        return MODELS[name]
    except (KeyError, TypeError):
        pass
    if is_import_path(name):  # looked up afresh each time: a reloaded module gives its new factory
        return _imported(name)
    raise ConfigError(f"Unknown model {name!r}; known models: {', '.join(MODELS)}, or package.module:factory "
                      f"for a model of your own.") from None


def model_name_for(factory: Callable[..., nn.Module]) -> str:
    """The name a model given as a Python object runs under: its import path ``module:qualname`` when importing
    that path gives the same object back (so worker processes build it the same way), else ``local:qualname``,
    registered in this process only (a lambda, a function defined in a notebook cell or inside a function)."""
    if isinstance(factory, ModelInfo):
        if factory.name not in MODELS:
            MODELS[factory.name] = factory
        return factory.name
    if not callable(factory):
        raise ConfigError(must_be("model", "a model name, package.module:factory, or a callable factory", factory,
                                  shown=type(factory).__name__))
    module, qualname = getattr(factory, "__module__", None), getattr(factory, "__qualname__", "")
    if module and qualname and "<" not in qualname and module != "__main__":
        spec = f"{module}:{qualname}"
        try:
            if is_import_path(spec) and model_info(spec).factory is factory:
                return spec
        except ConfigError:
            pass
    name = f"local:{qualname or type(factory).__name__}"
    MODELS[name] = ModelInfo(name, factory, lr=USER_LR, description="user model defined in this process")
    return name
