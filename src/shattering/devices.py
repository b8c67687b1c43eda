"""Devices and numeric precision: bf16 autocast where the processor computes bf16 natively, else fp32.

bf16 autocast keeps fp32 master weights, fp32 optimizer state and fp32 batch-norm statistics; only the
matrix products and convolutions run in bf16. ``precision="fp32"`` forces full precision for users who
want bit-for-bit comparisons. (The paper trained in fp32; Section 2.1 fixes the procedure, not the
arithmetic.)

It sits just below :mod:`shattering.config`, which resolves a run's ``device``, ``precision`` and
``eval_batch_size`` defaults with it; it needs only torch and the model catalogue.
"""

from __future__ import annotations

import contextlib
import functools

from ._lazy import lazy_import
from .errors import ConfigError
from .models import model_info
from .validation import must_be

torch = lazy_import("torch")  # imported when a function here first needs it: the config imports this module


@functools.lru_cache(maxsize=1)
def cpu_has_native_bf16() -> bool:
    """True when the CPU has bf16 arithmetic instructions (AVX512-BF16 or AMX-BF16), not just emulation."""
    try:
        with open("/proc/cpuinfo") as fh:
            flags = fh.read()
    except OSError:
        return False
    return ("avx512_bf16" in flags or "amx_bf16" in flags) and torch.ops.mkldnn._is_mkldnn_bf16_supported()


def resolve_device(device: str = "auto") -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        raise ConfigError("--device cuda was asked for but PyTorch sees no CUDA GPU; use --device cpu or auto.")
    if device not in ("cpu", "cuda"):
        raise ConfigError(must_be("device", "one of auto, cpu, cuda", device))
    return torch.device(device)


def resolve_precision(precision: str, device: str = "auto") -> str:
    """Turn ``auto`` into ``bf16`` or ``fp32`` for the device the run will use."""
    if precision != "auto":
        return precision
    dev = resolve_device(device)
    if dev.type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp32"
    return "bf16" if cpu_has_native_bf16() else "fp32"


CPU_CONV_EVAL_BATCH = 256  # on a CPU a convolutional net evaluates faster in batches whose activations fit cache
EVAL_BATCH = 1024


def default_eval_batch_size(model: str, device: str = "auto") -> int:
    """Examples per evaluation batch: 1024, except 256 for convolutional models on a CPU (bench/bench.py:
    re-evaluating 1,024 images with inception-small took 1.62 s in batches of 1024 and 1.12-1.27 s in batches
    of 128-256; alexnet-small 1.07 s against 0.67-0.71 s; the MLP is fastest at 1024)."""
    if resolve_device(device).type == "cpu" and model_info(model).convolutional:
        return CPU_CONV_EVAL_BATCH
    return EVAL_BATCH


def optimizer_options(device: torch.device) -> dict:
    """Keyword arguments of ``torch.optim.SGD`` for parameters on ``device``: on CUDA the fused kernel
    (``fused=True``, torch >= 2.0: one kernel updates every parameter, instead of several per tensor); on the
    CPU PyTorch's default, whose arithmetic the bit-for-bit tests compare (separate and packed runs)."""
    return {"fused": True} if device.type == "cuda" else {}


def prepare_device(device: torch.device) -> None:
    """Process-wide settings for training on ``device``: on CUDA ``cudnn.benchmark`` (every training batch of a
    run has the same shape, so cuDNN times its convolution algorithms once per shape and keeps the fastest;
    the choice may differ between processes, so GPU runs are not bit-for-bit repeatable, which they are not
    anyway). Nothing on the CPU."""
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True


def autocast(device: torch.device, precision: str):
    """The autocast context for ``precision`` (a no-op for fp32)."""
    if precision == "bf16":
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()
