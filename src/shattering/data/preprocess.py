"""The paper's preprocessing (Appendix A): pixels / 255, centre crop 32 -> 28, per-image whitening.

Each step is a named option with the paper's choice as the default for the paper's data (CIFAR-10).
All functions are pure: they take numpy arrays of shape (N, C, H, W) and return new float32 arrays.
"""

from __future__ import annotations

import math

import numpy as np

WHITENINGS = ("per-image", "per-channel", "none")


def scale_pixels(x: np.ndarray, scale: float) -> np.ndarray:
    """Divide raw pixel values by ``scale`` (255 for 8-bit images), giving float32 values in [0, 1]."""
    return np.asarray(x, dtype=np.float32) / np.float32(scale)


def center_crop(x: np.ndarray, size: int | None) -> np.ndarray:
    """Keep the central ``size`` x ``size`` window (the paper: 32 -> 28 on CIFAR-10, 2 pixels per side)."""
    if size is None:
        return x
    h, w = x.shape[-2:]
    if size > h or size > w:
        raise ValueError(f"cannot centre-crop {h}x{w} images to {size}x{size}")
    top, left = (h - size) // 2, (w - size) // 2
    return x[..., top:top + size, left:left + size]


def per_image_whitening(x):
    """TensorFlow's ``per_image_whitening`` (now ``per_image_standardization``), image by image.

    Subtract the image's mean and divide by the adjusted standard deviation ``max(std, 1 / sqrt(N))``, where
    mean and std run over all N = C*H*W values of the image; the guard keeps uniform images finite. Takes a
    numpy array or a torch tensor of shape (N, C, H, W) and returns the same kind (float32).
    """
    import torch  # here: the config reads WHITENINGS, and `shatter --help` loads no torch

    is_numpy = isinstance(x, np.ndarray)
    t = torch.from_numpy(np.asarray(x, dtype=np.float32)) if is_numpy else x.float()
    dims = tuple(range(1, t.ndim))
    std, mean = torch.std_mean(t, dim=dims, correction=0, keepdim=True)
    n = math.prod(t.shape[1:])
    out = (t - mean) / std.clamp_min(1.0 / math.sqrt(n))
    return out.numpy() if is_numpy else out


def channel_stats(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel mean and standard deviation over all images and positions, shape (C,)."""
    x = np.asarray(x)
    mean = x.mean(axis=(0, 2, 3), dtype=np.float64)
    std = x.std(axis=(0, 2, 3), dtype=np.float64)
    return mean.astype(np.float32), std.astype(np.float32)


def per_channel_whitening(x: np.ndarray, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    """Standardize each channel with statistics of the training set (``channel_stats``)."""
    std = np.maximum(std, np.float32(1e-8))
    return ((np.asarray(x, dtype=np.float32) - mean[None, :, None, None]) / std[None, :, None, None]).astype(
        np.float32
    )
