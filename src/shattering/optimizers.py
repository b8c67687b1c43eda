"""The optimizers a run can train with, built in one place.

The paper trains with SGD and momentum 0.9 (Zhang et al., ICLR 2017, Section 2.1). Im, Tao and Branson (2016, "An
empirical analysis of the optimization of deep network loss surfaces") compared SGD, Nesterov's momentum, Adam,
RMSprop, Adagrad and Adadelta and found that they reach different minima; AdamW (Loshchilov and Hutter, ICLR 2019)
is the decoupled-decay Adam most networks train with today. Every trainer (a single run, a pack of MLPs) and the
tuning's timed steps build their optimizer with :func:`build_optimizer`, from a run's settings.

The update rules, with g the gradient, lr the epoch's learning rate and wd ``weight_decay`` (added to g as
L2 for all but AdamW, whose decay is decoupled: theta <- theta - lr wd theta):

- ``sgd``: v <- mu v + g, theta <- theta - lr v (mu = ``momentum``; PyTorch's form, as the paper's TensorFlow);
- ``nesterov``: v <- mu v + g, theta <- theta - lr (g + mu v) (Sutskever et al., ICML 2013);
- ``adam`` / ``adamw``: m <- b1 m + (1 - b1) g, s <- b2 s + (1 - b2) g^2, theta <- theta - lr m^ / (sqrt(s^) +
  eps) with bias-corrected m^, s^ (Kingma and Ba, ICLR 2015);
- ``rmsprop``: s <- alpha s + (1 - alpha) g^2, theta <- theta - lr g / (sqrt(s) + eps) (Tieleman and Hinton,
  2012);
- ``adagrad``: s <- s + g^2, theta <- theta - lr g / (sqrt(s) + eps) (Duchi, Hazan and Singer, JMLR 2011);
- ``adadelta``: s <- rho s + (1 - rho) g^2, d = sqrt(u + eps) / sqrt(s + eps) g, u <- rho u + (1 - rho) d^2,
  theta <- theta - lr d (Zeiler, 2012).

Every one of these updates each parameter element by element, from that element's gradient and state alone; so a
pack of K runs (:mod:`shattering.train.packed`) holds each state tensor stacked (K, ...) and is exactly K separate
runs (:func:`stack_state`, :func:`select_state`, :func:`member_state` handle any state generically, never a
buffer by name). An optimizer whose state is not element-wise must be declared ``packable=False``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from ._lazy import lazy_import
from .devices import optimizer_options

torch = lazy_import("torch")  # imported when an optimizer is built: the config reads OPTIMIZERS without torch

# The settings an optimizer reads besides lr and weight decay: the RunConfig field -> the torch keyword.
SETTING_FIELDS = ("momentum", "beta1", "beta2", "eps", "alpha", "rho")


@dataclass(frozen=True)
class OptimizerInfo:
    """One optimizer: ``name`` (as ``--optimizer`` spells it), ``title`` and ``paper`` (where it comes from),
    ``lr`` (its default initial learning rate; None: the model's, the paper's 0.1 / 0.01 for SGD), ``settings``
    (the RunConfig fields it reads, with their torch keywords) and ``eps`` (its default epsilon)."""

    name: str
    title: str
    paper: str
    lr: float | None
    settings: tuple[str, ...]
    eps: float | None = None
    packable: bool = True


OPTIMIZERS: dict[str, OptimizerInfo] = {o.name: o for o in (
    OptimizerInfo("sgd", "SGD with momentum", "Zhang et al. 2017 (the paper's)", None, ("momentum",)),
    OptimizerInfo("nesterov", "SGD with Nesterov's momentum", "Sutskever et al. 2013", None, ("momentum",)),
    OptimizerInfo("adam", "Adam", "Kingma and Ba 2015", 1e-3, ("beta1", "beta2", "eps"), eps=1e-8),
    OptimizerInfo("adamw", "AdamW (decoupled weight decay)", "Loshchilov and Hutter 2019", 1e-3,
                  ("beta1", "beta2", "eps"), eps=1e-8),
    OptimizerInfo("rmsprop", "RMSprop", "Tieleman and Hinton 2012", 1e-3, ("alpha", "eps"), eps=1e-8),
    OptimizerInfo("adagrad", "Adagrad", "Duchi, Hazan and Singer 2011", 1e-2, ("eps",), eps=1e-10),
    OptimizerInfo("adadelta", "Adadelta", "Zeiler 2012", 1.0, ("rho", "eps"), eps=1e-6),
)}


def optimizer_info(name: str) -> OptimizerInfo:
    """The :class:`OptimizerInfo` of ``name`` (one of :data:`OPTIMIZERS`)."""
    return OPTIMIZERS[name]


def default_lr(name: str, model_lr: float) -> float:
    """The initial learning rate of optimizer ``name`` when none is given: its own default, else the model's."""
    lr = OPTIMIZERS[name].lr
    return model_lr if lr is None else lr


def unused_settings(name: str, values: dict, defaults: dict) -> list[str]:
    """The settings in ``values`` (field -> value) that optimizer ``name`` does not read but that differ from
    their ``defaults`` (RunConfig's): a setting that would be ignored."""
    reads = OPTIMIZERS[name].settings
    return [f for f in SETTING_FIELDS if f not in reads and values.get(f) != defaults[f]]


def describe(name: str, values: dict) -> str:
    """The optimizer and the settings it reads, in a few words: "adam (beta1 0.9, beta2 0.999, eps 1e-08)"."""
    info = OPTIMIZERS[name]
    parts = []
    for f in info.settings:
        value = values.get(f)
        parts.append(f"{f} {info.eps if f == 'eps' and value is None else value:g}")
    return f"{name} ({', '.join(parts)})" if parts else name


def param_groups(decay: Sequence[torch.Tensor], no_decay: Sequence[torch.Tensor], weight_decay: float) -> list[dict]:
    """Weight decay on the weights only (``decay``), not on biases or batch-norm offsets (``no_decay``)."""
    return [{"params": list(decay), "weight_decay": weight_decay}, {"params": list(no_decay), "weight_decay": 0.0}]


def model_groups(model: torch.nn.Module, weight_decay: float) -> list[dict]:
    """:func:`param_groups` of ``model``: a parameter of more than one dimension is a weight."""
    params = [p for p in model.parameters() if p.requires_grad]
    return param_groups([p for p in params if p.ndim > 1], [p for p in params if p.ndim <= 1], weight_decay)


def build_optimizer(name: str, groups: Iterable[dict], *, lr: float, device: torch.device,
                    momentum: float = 0.9, beta1: float = 0.9, beta2: float = 0.999, eps: float | None = None,
                    alpha: float = 0.99, rho: float = 0.9) -> torch.optim.Optimizer:
    """The optimizer ``name`` over ``groups`` (:func:`param_groups`) with initial learning rate ``lr``; fused
    (one kernel for every parameter) on CUDA where PyTorch has it, its plain per-tensor arithmetic on the CPU
    (what the bit-for-bit tests of packed against separate runs compare)."""
    info = OPTIMIZERS[name]
    eps = info.eps if eps is None else eps
    fused = optimizer_options(device)
    if name in ("sgd", "nesterov"):
        return torch.optim.SGD(groups, lr=lr, momentum=momentum, nesterov=name == "nesterov", **fused)
    if name == "adam":
        return torch.optim.Adam(groups, lr=lr, betas=(beta1, beta2), eps=eps, **fused)
    if name == "adamw":
        return torch.optim.AdamW(groups, lr=lr, betas=(beta1, beta2), eps=eps, **fused)
    if name == "rmsprop":
        return torch.optim.RMSprop(groups, lr=lr, alpha=alpha, eps=eps)
    if name == "adagrad":
        return torch.optim.Adagrad(groups, lr=lr, eps=eps)
    if name == "adadelta":
        return torch.optim.Adadelta(groups, lr=lr, rho=rho, eps=eps)
    raise KeyError(name)  # OPTIMIZERS and this function list the same names (tests/test_optimizers.py)


def run_optimizer(cfg, groups: Iterable[dict], device: torch.device) -> torch.optim.Optimizer:
    """:func:`build_optimizer` with the settings of run ``cfg`` (a resolved :class:`~shattering.config.RunConfig`)."""
    return build_optimizer(cfg.optimizer, groups, lr=cfg.lr, device=device,
                           **{f: getattr(cfg, f) for f in SETTING_FIELDS})


# -- the state of a pack: K members' state tensors stacked -------------------------------------------------------


class Unpackable(ValueError):
    """An optimizer state that cannot be stacked over the members of a pack."""


def stack_state(optimizer: torch.optim.Optimizer, params: Sequence[torch.Tensor],
                members: Sequence[Sequence[dict]]) -> None:
    """Fill ``optimizer``'s state of the packed ``params`` (each (K, ...)) from the members' states:
    ``members[k][i]`` is member k's state of its parameter i (``{}`` where it has none yet). A tensor shaped as
    the member's parameter is stacked; a number or a scalar tensor (a step count) must be equal in every member
    (members of a pack step together) and is kept once."""
    for i, p in enumerate(params):
        states = [m[i] for m in members]
        if not any(states):
            continue
        keys = set(states[0])
        if any(set(s) != keys for s in states):
            raise Unpackable("the members' optimizer states hold different entries")
        packed = {}
        for key in keys:
            values = [s[key] for s in states]
            first = values[0]
            if torch.is_tensor(first) and first.shape == p.shape[1:] and first.dim() > 0:
                packed[key] = torch.stack(values).to(p.device)
            elif all(_same(v, first) for v in values):
                packed[key] = first.clone() if torch.is_tensor(first) else first
            else:
                raise Unpackable(f"the members' optimizer state {key!r} differs and is not per element")
        optimizer.state[p] = packed


def _same(a, b) -> bool:
    if torch.is_tensor(a) and torch.is_tensor(b):
        return a.shape == b.shape and bool(torch.equal(a, b))
    return a == b


def select_state(optimizer: torch.optim.Optimizer, params: Sequence[torch.Tensor], keep: list[int]) -> None:
    """Keep the state of members ``keep`` only (after :meth:`PackedMLP.select` sliced the parameters)."""
    for p in params:
        state = optimizer.state.get(p)
        for key, value in (state or {}).items():
            if torch.is_tensor(value) and value.dim() > 0 and value.shape[1:] == p.shape[1:]:
                state[key] = value[keep].contiguous()


def member_state(optimizer: torch.optim.Optimizer, p: torch.Tensor, k: int) -> dict:
    """Member ``k``'s state of the packed parameter ``p``, in a separate run's form."""
    out = {}
    for key, value in optimizer.state.get(p, {}).items():
        if torch.is_tensor(value) and value.dim() > 0 and value.shape == p.shape:
            out[key] = value[k].clone()
        else:
            out[key] = value.clone() if torch.is_tensor(value) else value
    return out
