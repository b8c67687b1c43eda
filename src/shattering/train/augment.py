"""Explicit data augmentation (Section 3 and Appendix E), batched on tensors on the training device.

- ``random_crop``: each image of the batch gets its own random window. CIFAR crops a random 28x28 window
  of the full 32x32 image (the paper's augmentation; test images are centre-cropped), other data is padded
  with zeros and cropped back to its size.
- ``flip_rotate``: random left-right flip plus a random rotation of up to 25 degrees (Appendix E), by one
  batched ``affine_grid``/``grid_sample``.

Random numbers come from the run's own CPU generator (saved in every checkpoint), so a resumed run draws
exactly the augmentations an uninterrupted one would.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def crop_windows(x: torch.Tensor, size_h: int, size_w: int, generator: torch.Generator) -> torch.Tensor:
    """A random ``size_h`` x ``size_w`` window of each image of ``x`` (B, C, H, W), by one gather."""
    b, c, h, w = x.shape
    top = torch.randint(0, h - size_h + 1, (b,), generator=generator).to(x.device)
    left = torch.randint(0, w - size_w + 1, (b,), generator=generator).to(x.device)
    rows = (top[:, None] + torch.arange(size_h, device=x.device))[:, :, None]  # (B, h, 1)
    cols = (left[:, None] + torch.arange(size_w, device=x.device))[:, None, :]  # (B, 1, w)
    batch = torch.arange(b, device=x.device)[:, None, None]
    out = x.permute(0, 2, 3, 1)[batch, rows, cols]  # (B, h, w, C)
    return out.permute(0, 3, 1, 2).contiguous(memory_format=torch.channels_last if x.is_contiguous(
        memory_format=torch.channels_last) and c > 1 else torch.contiguous_format)


def pad_and_crop(x: torch.Tensor, padding: int, generator: torch.Generator) -> torch.Tensor:
    """Zero-pad by ``padding`` pixels and take a random window of the original size."""
    if padding == 0:
        return x
    h, w = x.shape[-2:]
    return crop_windows(F.pad(x, (padding, padding, padding, padding)), h, w, generator)


def flip_rotate(x: torch.Tensor, max_degrees: float, generator: torch.Generator) -> torch.Tensor:
    """Random left-right flip (probability 1/2) and rotation uniform in [-max_degrees, max_degrees]."""
    b = x.shape[0]
    flip = torch.rand(b, generator=generator) < 0.5
    angle = (torch.rand(b, generator=generator) * 2 - 1) * math.radians(max_degrees)
    cos, sin = torch.cos(angle), torch.sin(angle)
    sign = torch.where(flip, -1.0, 1.0)
    # (B, 2, 3) affine maps from output to input coordinates: rotation, then a mirror of x.
    theta = torch.stack([torch.stack([cos * sign, -sin, torch.zeros(b)], 1),
                         torch.stack([sin * sign, cos, torch.zeros(b)], 1)], 1).to(x.device, x.dtype)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
