"""Building a model by name, counting its parameters the way Table 1 does, and checking a user's model before a
run starts: that its factory builds, that its output has one logit per class, and a digest of its parameters'
names and shapes, so that two different models never share a run record (Section 2.1's randomization tests on
the researcher's own network)."""

from __future__ import annotations

import hashlib
import inspect
import json

from .._lazy import lazy_import
from ..errors import ConfigError
from ..validation import must_be
from .catalogue import FACTORY_CALL, MODELS, model_info

torch = lazy_import("torch")  # imported when a model is built: the config reads the catalogue without torch
nn = lazy_import("torch.nn")

BUILTIN: frozenset[str] = frozenset()  # the built-in models' names, set once they are registered (models/__init__)


def build_model(name: str, input_shape: tuple[int, int, int], num_classes: int, dropout: float = 0.0,
                **options) -> nn.Module:
    """Build model ``name`` for inputs of shape (C, H, W) and ``num_classes`` outputs (PyTorch's default init).
    ``options``: the factory's keyword arguments (``aux_logits`` for inception-v3; ``model_args`` of a user
    model). A user model whose factory fails or returns something else than an ``nn.Module`` gets one sentence."""
    info = model_info(name)
    if len(input_shape) != 3 or min(input_shape) < 1:
        raise ConfigError(must_be("input_shape", "(C, H, W) with positive sizes", tuple(input_shape), of="build_model"))
    shape = tuple(int(s) for s in input_shape)
    if name in BUILTIN and not options.keys() - {"aux_logits"}:
        return info.factory(shape, int(num_classes), dropout=dropout, **options)
    if takes_keyword(info.factory, "dropout"):
        options = {"dropout": dropout, **options}
    elif dropout:
        raise ConfigError(dropout_refused(name, dropout))
    try:
        model = info.factory(shape, int(num_classes), **options)
    except Exception as exc:  # the user's code: whatever it raises is reported as theirs, in one sentence
        raise ConfigError(f"Model {name!r} could not be built for inputs {list(shape)} and {num_classes} classes "
                          f"({type(exc).__name__}: {exc}); it is called as {FACTORY_CALL}.") from None
    if not isinstance(model, nn.Module):
        raise ConfigError(f"Model {name!r}'s factory returned a {type(model).__name__}, not an nn.Module; it is "
                          f"called as {FACTORY_CALL} and must return the network.")
    return model


def takes_keyword(factory, name: str) -> bool:
    """Whether ``factory`` accepts the keyword argument ``name`` (by name, or through ``**kwargs``); True where its
    signature cannot be read (calling it will tell)."""
    try:
        parameters = inspect.signature(factory).parameters.values()
    except (TypeError, ValueError):
        return True
    return any(p.kind is p.VAR_KEYWORD or (p.name == name and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY))
               for p in parameters)


def dropout_refused(name: str, dropout: float) -> str:
    """The one sentence refusing a dropout a user model's factory cannot take."""
    return (f"Model {name!r}'s factory takes no 'dropout' argument, so a dropout of {dropout:g} cannot be applied to "
            "it; add a dropout keyword to the factory (def factory(input_shape, num_classes, dropout=0.0)), or leave "
            "dropout at 0.")


def paper_param_count(model: nn.Module) -> int:
    """Count parameters as Table 1 does: every learned weight and bias of the convolutions and linear layers,
    plus batch normalization's learned offset beta (its scale is fixed at 1 and its running statistics are not
    parameters). Equivalently: the trainable parameters of shattering's models."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


_DIGESTS: dict[tuple, str] = {}


def architecture_digest(name: str, input_shape: tuple[int, int, int], num_classes: int,
                        model_args: dict | None = None) -> str:
    """16 hex digits of SHA-256 over the names and shapes of the model's parameters and buffers, for inputs of
    ``input_shape`` and ``num_classes`` outputs; first checks that the model maps a batch of such inputs to one
    logit per class (one sentence otherwise). Computed once per process and model."""
    info = model_info(name)
    key = (name, id(info.factory), tuple(input_shape), int(num_classes), json.dumps(model_args or {}, sort_keys=True))
    if key not in _DIGESTS:
        with torch.random.fork_rng(devices=[]):  # building draws initial weights: leave the caller's RNG alone
            model = build_model(name, input_shape, num_classes, **(model_args or {}))
        check_output(model, name, tuple(input_shape), int(num_classes))
        entries = [(k, list(v.shape)) for k, v in model.state_dict().items()]
        _DIGESTS[key] = hashlib.sha256(json.dumps(entries).encode()).hexdigest()[:16]
    return _DIGESTS[key]


def check_output(model: nn.Module, name: str, input_shape: tuple[int, int, int], num_classes: int) -> None:
    """The model must map a batch of 2 inputs of ``input_shape`` to logits of shape (2, ``num_classes``)."""
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            out = model(torch.zeros(2, *input_shape))
    except Exception as exc:  # the user's forward pass
        raise ConfigError(f"Model {name!r} failed on a batch of inputs of shape [2, {', '.join(map(str, input_shape))}]"
                          f" ({type(exc).__name__}: {exc}); its forward must take (N, C, H, W) images.") from None
    finally:
        model.train(was_training)
    shape = list(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
    if shape != [2, num_classes]:
        raise ConfigError(f"Model {name!r} returned {shape} for a batch of 2 inputs of shape {list(input_shape)}; "
                          f"it must return logits of shape [2, {num_classes}] (one per class).")


def is_builtin(name: str) -> bool:
    """True for the models shattering ships (their run ids need no digest: the name is the architecture)."""
    return name in BUILTIN and MODELS.get(name) is not None
