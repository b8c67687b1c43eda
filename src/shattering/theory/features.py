"""Fixed (untrained) feature maps for the kernel experiments of Section 5 / Appendix D (Table 3) of Zhang et al.,
"Understanding deep learning requires rethinking generalization" (ICLR 2017).

The paper solves Eq. (3) on MNIST "with no preprocessing" and "after a Gabor wavelet transform" (1.2% and
0.6% test error), and on CIFAR-10 on pixels and "after preprocessing with a random convolutional neural net
with 32,000 random filters" (46% and 17%). None of the transforms' parameters are stated [I]. Here:

- ``raw``: the flattened pixels.
- ``gabor``: a first-order Gabor (Morlet) wavelet transform: |x * psi_{j,theta}| * phi_J, subsampled by 2^J,
  together with the low-pass x * phi_J (J scales, L orientations; 1 + J L channels). This is the first order of
  Mallat's scattering transform.
- ``scattering``: the same plus the second order ||x * psi_{j1,t1}| * psi_{j2,t2}| * phi_J for j2 > j1
  (1 + J L + L^2 J (J - 1) / 2 channels: 81 at J = 2, L = 8, as kymatio's ``Scattering2D``). Implemented here
  in torch because kymatio 0.3.0 fails to import with scipy >= 1.17 (``scipy.special.sph_harm`` is gone).
- ``random-conv``: ``filters`` random Gaussian k x k filters, a ReLU, and average pooling to a ``pool`` x
  ``pool`` grid (filters * pool^2 features). The paper's 32,000 filters on CIFAR-10 give 128,000 features per
  image at pool 2: 51 GB in float64 for 50,000 images, a big-machine setting; the default here is 1,024
  filters (4,096 features; 250 MB in float32 for 15,000 images).

Wavelets follow kymatio's Morlet conventions (sigma = 0.8 * 2^j, xi = 3 pi / 4 / 2^j, slant 4 / L), built in
the Fourier domain on a reflect-padded grid; all maps are deterministic given their seed.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import ConfigError
from ..validation import check_choice, check_int

FEATURES = ("raw", "gabor", "scattering", "random-conv")
DEFAULT_J = 2  # scales of the wavelet transforms: output grid is (H / 4) x (W / 4)
DEFAULT_L = 8  # orientations
DEFAULT_FILTERS = 1024  # random conv filters (the paper: 32,000 on CIFAR-10)
DEFAULT_KERNEL_SIZE = 5  # random conv filter size
DEFAULT_POOL = 2  # random conv output grid: pool x pool
_BATCH = 256  # images per batch in the transforms


def _grid(m: int, n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Centered integer coordinates of an m x n grid, with the origin at index (0, 0) after ifftshift."""
    u = torch.arange(m, dtype=torch.float64) - m // 2
    v = torch.arange(n, dtype=torch.float64) - n // 2
    return torch.meshgrid(u, v, indexing="ij")


def gabor_2d(m: int, n: int, sigma: float, theta: float, xi: float, slant: float = 1.0) -> torch.Tensor:
    """A complex Gabor filter on an m x n grid (spatial domain, origin at the centre)."""
    u, v = _grid(m, n)
    c, s = math.cos(theta), math.sin(theta)
    along, across = c * u + s * v, -s * u + c * v
    envelope = torch.exp(-(along ** 2 + (slant * across) ** 2) / (2 * sigma ** 2))
    envelope = envelope / (2 * math.pi * sigma ** 2 / slant)
    return envelope * torch.exp(1j * xi * along)


def morlet_2d(m: int, n: int, sigma: float, theta: float, xi: float, slant: float) -> torch.Tensor:
    """A Morlet wavelet: the Gabor filter minus a multiple of its envelope so that it sums to zero."""
    wave = gabor_2d(m, n, sigma, theta, xi, slant)
    envelope = gabor_2d(m, n, sigma, theta, 0.0, slant)
    return wave - (wave.sum() / envelope.sum()) * envelope


def filter_bank(m: int, n: int, J: int = DEFAULT_J, L: int = DEFAULT_L) -> tuple[torch.Tensor, torch.Tensor]:
    """Fourier transforms of the wavelets psi_{j, l} (J*L, m, n) and of the low-pass phi_J (m, n)."""
    psi = []
    for j in range(J):
        for l in range(L):
            theta = (int(L - L / 2 - 1) - l) * math.pi / L
            w = morlet_2d(m, n, 0.8 * 2 ** j, theta, 3 * math.pi / 4 / 2 ** j, 4.0 / L)
            psi.append(torch.fft.fft2(torch.fft.ifftshift(w)))
    phi = gabor_2d(m, n, 0.8 * 2 ** J, 0.0, 0.0, 1.0).real
    phi_hat = torch.fft.fft2(torch.fft.ifftshift(phi / phi.sum())).real
    return torch.stack(psi), phi_hat


def wavelet_transform(x, J: int = DEFAULT_J, L: int = DEFAULT_L, order: int = 2) -> np.ndarray:
    """Scattering coefficients of images ``x`` (N, C, H, W) up to ``order`` (1: the Gabor transform).

    Returns an array of shape (N, C * channels * (H / 2^J) * (W / 2^J)), float32, where channels is 1 + J L
    (order 1) or 1 + J L + L^2 J (J - 1) / 2 (order 2).
    """
    x = torch.as_tensor(np.asarray(x), dtype=torch.float32)
    n_img, c, h, w = x.shape
    J = check_int(J, "J")
    L = check_int(L, "L")
    order = check_int(order, "order", maximum=2)
    step = 2 ** J
    if step >= min(h, w) or h % step or w % step:
        raise ConfigError(f"The wavelet transform with J = {J} needs image sides divisible by and larger than "
                          f"2^J = {step}; got {h}x{w} images: choose a smaller J.")
    # reflect-pad each side by at least 2 pixels, up to the next power of two (fast FFTs)
    m, nn = (1 << int(math.ceil(math.log2(s + 4))) for s in (h, w))
    ph, pw = (m - h) // 2, (nn - w) // 2
    if max(ph, pw) >= min(h, w):
        ph, pw = min(ph, h - 1), min(pw, w - 1)
        m, nn = h + 2 * ph, w + 2 * pw
    psi, phi = filter_bank(m, nn, J, L)
    psi, phi = psi.to(torch.complex64), phi.to(torch.float32)

    def lowpass(u: torch.Tensor) -> torch.Tensor:  # (B, k, m, nn) real -> (B, k, h/step, w/step)
        out = torch.fft.ifft2(torch.fft.fft2(u) * phi).real
        return out[..., ph:ph + h:step, pw:pw + w:step]

    def modulus(z: torch.Tensor) -> torch.Tensor:
        parts = torch.view_as_real(z)
        return torch.hypot(parts[..., 0], parts[..., 1])

    # second order: |(|x * psi_{j1}|) * psi_{j2}| for j2 > j1; grouped by the first-order channel
    firsts = [j1 * L + l1 for j1 in range(J - 1) for l1 in range(L)]
    seconds = [[j2 * L + l2 for j2 in range(j1 + 1, J) for l2 in range(L)] for j1 in range(J - 1) for _ in range(L)]
    chunks = []
    for start in range(0, n_img, _BATCH):
        xb = x[start:start + _BATCH].reshape(-1, 1, h, w)  # channels as separate images
        xp = F.pad(xb, (pw, pw, ph, ph), mode="reflect")
        u1 = modulus(torch.fft.ifft2(torch.fft.fft2(xp) * psi))  # (B, J*L, m, nn)
        parts = [lowpass(xp), lowpass(u1)]
        if order == 2 and firsts:
            u1f = torch.fft.fft2(u1[:, firsts])  # (B, (J-1)*L, m, nn)
            for i, second in enumerate(seconds):
                parts.append(lowpass(modulus(torch.fft.ifft2(u1f[:, i:i + 1] * psi[second]))))
        coeffs = torch.cat(parts, dim=1)  # (B*C, channels, h/step, w/step)
        chunks.append(coeffs.reshape(len(coeffs) // c, -1).numpy())
    return np.concatenate(chunks) if chunks else np.zeros((0, 0), np.float32)


def random_conv_features(x, filters: int = DEFAULT_FILTERS, kernel_size: int = DEFAULT_KERNEL_SIZE,
                         pool: int = DEFAULT_POOL, seed: int = 0) -> np.ndarray:
    """ReLU responses of ``filters`` random Gaussian filters, average-pooled to a ``pool`` x ``pool`` grid.

    Filters are i.i.d. N(0, 1) k x k x C arrays with their mean removed (a flat patch gives 0) and unit norm;
    no bias. Returns an (N, filters * pool^2) float32 array. The same ``seed`` gives the same filters, so
    training and test images must be featurized with the same seed.
    """
    x = torch.as_tensor(np.asarray(x), dtype=torch.float32)
    filters = check_int(filters, "filters")
    kernel_size = check_int(kernel_size, "kernel_size", maximum=min(x.shape[-2:]))
    pool = check_int(pool, "pool", maximum=min(x.shape[-2:]) - kernel_size + 1)
    gen = torch.Generator().manual_seed(int(seed))
    weight = torch.randn(filters, x.shape[1], kernel_size, kernel_size, generator=gen)
    weight -= weight.mean(dim=(1, 2, 3), keepdim=True)
    weight /= weight.flatten(1).norm(dim=1).clamp_min(1e-12)[:, None, None, None]
    out = []
    batch = max(1, (1 << 26) // (filters * x.shape[-1] * x.shape[-2]))  # ~256 MB of responses per batch
    for start in range(0, len(x), batch):
        r = torch.relu_(F.conv2d(x[start:start + batch], weight))  # (B, filters, H - k + 1, W - k + 1)
        out.append(F.adaptive_avg_pool2d(r, pool).flatten(1).numpy())
    return np.concatenate(out) if out else np.zeros((0, filters * pool * pool), np.float32)


def standardize(f_train: np.ndarray, f_test: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """z-score every feature with the training mean and standard deviation (constant features become 0)."""
    mean = f_train.mean(axis=0)
    std = f_train.std(axis=0)
    std = np.where(std > 0, std, 1.0)
    return (f_train - mean) / std, (f_test - mean) / std


def compute_features(name: str, x_train, x_test, *, J: int = DEFAULT_J, L: int = DEFAULT_L,
                     filters: int = DEFAULT_FILTERS, kernel_size: int = DEFAULT_KERNEL_SIZE, pool: int = DEFAULT_POOL,
                     standardized: bool | None = None, seed: int = 0) -> tuple[np.ndarray, np.ndarray, dict]:
    """Feature map ``name`` applied to training and test images (N, C, H, W); returns float64 matrices and a
    description of the map.

    ``standardized`` (default: True for every map but ``raw``) z-scores each feature with training statistics
    [I]: the wavelet and random-conv coefficients have very different scales across channels, and with a
    median-heuristic bandwidth the low-pass channel would otherwise dominate the distances (measured on 2,000
    Fashion-MNIST images, Gaussian kernel: scattering 16.0% -> 13.4% test error, Gabor 18.8% -> 16.5%,
    random conv 17.6% -> 16.8%; raw pixels 17.8%).
    """
    name = check_choice(name, "features", FEATURES)
    if name == "raw":
        f_train, f_test = (np.asarray(x).reshape(len(x), -1) for x in (x_train, x_test))
        info = {"features": "raw", "description": "flattened pixels"}
    elif name in ("gabor", "scattering"):
        order = 1 if name == "gabor" else 2
        f_train, f_test = (wavelet_transform(x, J, L, order) for x in (x_train, x_test))
        kind = "Gabor (Morlet) wavelet modulus, order 1" if order == 1 else "scattering transform, orders 0-2"
        info = {"features": name, "description": f"{kind}, J={J}, L={L}", "J": J, "L": L, "order": order}
    else:
        f_train, f_test = (random_conv_features(x, filters, kernel_size, pool, seed) for x in (x_train, x_test))
        info = {"features": name, "filters": filters, "kernel_size": kernel_size, "pool": pool,
                "description": f"{filters} random {kernel_size}x{kernel_size} filters, ReLU, {pool}x{pool} mean pool"}
    f_train = np.ascontiguousarray(f_train, dtype=np.float64)
    f_test = np.ascontiguousarray(f_test, dtype=np.float64)
    standardized = name != "raw" if standardized is None else bool(standardized)
    if standardized:
        f_train, f_test = standardize(f_train, f_test)
    info["standardized"] = standardized
    info["dimension"] = int(f_train.shape[1])
    return f_train, f_test, info
