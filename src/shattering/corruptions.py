"""The six randomizations of Section 2.1 of Zhang et al. (ICLR 2017), pure and seeded.

- ``true-labels``: the data set unchanged.
- ``partial-labels``: "independently with probability p, the label of each image is corrupted as a uniform
  random class". The new class is drawn from *all* K classes, so it may equal the true one and the expected
  share of wrong labels is p(1 - 1/K); ``exclude_true_class=True`` draws among the other K - 1 classes
  instead, making it p.
- ``random-labels``: all labels replaced (p = 1).
- ``shuffled-pixels``: one random permutation of the pixels, applied to every image of the training *and*
  test set. A "pixel" is a spatial position whose channels move together (``pixel_unit="position"``);
  ``pixel_unit="value"`` permutes all C*H*W scalar values instead.
- ``random-pixels``: a different random permutation for each image.
- ``gaussian``: each image replaced by i.i.d. Gaussian pixels whose per-channel mean and variance match the
  training set *at the scale the model sees* (after preprocessing).

For the pixel randomizations ``p`` is the share of images affected (default 1) and the test images are
randomized the same way (the randomized data set is a new input distribution; shuffled pixels are defined
on both splits by the paper). Test labels stay clean unless ``corrupt_test_labels=True``.

A data set streamed from disk (an image folder: ImageNet, Table 2) takes the label corruptions only:
:func:`randomize_folder` draws its labels with the streams :func:`randomize` uses, so a folder gets the labels
its in-memory copy would, and keeps them in the run folder (:mod:`shattering.data.folder_data`).

Every randomization is drawn once, from its own ``numpy`` stream of ``seed``, and returned as new arrays:
nothing is re-drawn per epoch or per batch, and calling twice gives identical bytes. Draws do not depend
on ``p`` (a uniform number and a candidate are drawn for every example), so with one seed the examples
corrupted at p = 0.2 are a subset of those corrupted at p = 0.4.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .data.dataset import STREAM_TEST_SUBSET, STREAM_TRAIN_SUBSET, ImageData, rng_for, stratified_subset
from .data.folder_data import LABELS_FORMAT, FolderData, folder_data, read_labels, write_labels
from .data.location import locate_image_folder
from .errors import ConfigError, DataNotFoundError
from .validation import must_be

if TYPE_CHECKING:
    from .config import RunConfig
    from .data.image_folder import FolderListing

LABEL_CORRUPTIONS = ("true-labels", "partial-labels", "random-labels")
PIXEL_CORRUPTIONS = ("shuffled-pixels", "random-pixels", "gaussian")
CORRUPTIONS = LABEL_CORRUPTIONS + PIXEL_CORRUPTIONS
PIXEL_UNITS = ("position", "value")

# One numpy stream per purpose, so that each draw is independent of every other.
_STREAM = {
    "train_labels": 11, "test_labels": 12,
    "permutation": 21, "shuffle_select_train": 22, "shuffle_select_test": 23,
    "random_pixels_train": 31, "random_pixels_test": 32,
    "gaussian_train": 41, "gaussian_test": 42,
}
_CHUNK = 4096  # images per chunk when drawing per-image randomness (bounds memory)


def check_p(corruption: str, p: float | None) -> float:
    """Resolve and validate the corruption probability ``p`` of ``corruption``."""
    if corruption not in CORRUPTIONS:
        raise ConfigError(f"Unknown corruption {corruption!r}; known corruptions: {', '.join(CORRUPTIONS)}.")
    if p is not None:
        try:
            p = float(p)
        except (TypeError, ValueError):
            raise ConfigError(must_be("p", "a number in [0, 1]", p)) from None
        if not (math.isfinite(p) and 0.0 <= p <= 1.0):
            raise ConfigError(must_be("p", "a probability in [0, 1]", p))
    if corruption == "true-labels":
        if p not in (None, 0.0):
            raise ConfigError(must_be("p", "0 or left out for true-labels, which changes nothing", p))
        return 0.0
    if corruption == "random-labels":
        if p not in (None, 1.0):
            raise ConfigError(f"random-labels means p = 1; for p = {p} use --corruption partial-labels --p {p}.")
        return 1.0
    if corruption == "partial-labels" and p is None:
        raise ConfigError("partial-labels needs a corruption probability: pass --p between 0 and 1.")
    return 1.0 if p is None else p


# --------------------------------------------------------------------------------------------------
# Array-level randomizations (pure functions of arrays and a generator)
# --------------------------------------------------------------------------------------------------


def corrupt_labels(y: np.ndarray, p: float, num_classes: int, rng: np.random.Generator,
                   exclude_true_class: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Replace each label, with probability ``p``, by a uniformly drawn class.

    Returns ``(new_labels, selected)`` where ``selected`` marks the examples whose label was redrawn (a
    redrawn label can equal the old one unless ``exclude_true_class``).
    """
    y = np.asarray(y, dtype=np.int64)
    n = len(y)
    u = rng.random(n)
    if exclude_true_class:
        candidate = (y + rng.integers(1, num_classes, size=n)) % num_classes
    else:
        candidate = rng.integers(0, num_classes, size=n)
    selected = u < p
    return np.where(selected, candidate, y).astype(np.int64), selected


def _flat_view(x: np.ndarray, unit: str) -> tuple[np.ndarray, tuple]:
    """(N, groups, items) view: a permutation acts on the last axis."""
    n, c, h, w = x.shape
    if unit == "position":
        return x.reshape(n, c, h * w), x.shape
    return x.reshape(n, 1, c * h * w), x.shape


def permute_pixels(x: np.ndarray, permutation: np.ndarray, selected: np.ndarray, unit: str = "position") -> np.ndarray:
    """Apply one ``permutation`` (of the H*W positions, or of the C*H*W values) to the selected images."""
    flat, shape = _flat_view(np.asarray(x), unit)
    out = flat.copy()
    out[selected] = flat[selected][:, :, permutation]
    return out.reshape(shape)


def shuffle_each_image(x: np.ndarray, selected: np.ndarray, rng: np.random.Generator,
                       unit: str = "position") -> np.ndarray:
    """Apply an independent random permutation to each selected image (drawn for every image)."""
    flat, shape = _flat_view(np.asarray(x), unit)
    out = flat.copy()
    m = flat.shape[2]
    for start in range(0, len(flat), _CHUNK):
        stop = min(start + _CHUNK, len(flat))
        perms = rng.permuted(np.tile(np.arange(m, dtype=np.int32), (stop - start, 1)), axis=1)
        sel = selected[start:stop]
        block = flat[start:stop][sel]
        out[start:stop][sel] = np.take_along_axis(block, perms[sel][:, None, :].astype(np.intp), axis=2)
    return out.reshape(shape)


def gaussian_images(x: np.ndarray, selected: np.ndarray, mean: np.ndarray, std: np.ndarray,
                    rng: np.random.Generator) -> np.ndarray:
    """Replace the selected images by i.i.d. N(mean_c, std_c^2) pixels, channel by channel."""
    x = np.asarray(x)
    out = x.astype(np.float32, copy=True)
    mean = np.asarray(mean, dtype=np.float32)[None, :, None, None]
    std = np.asarray(std, dtype=np.float32)[None, :, None, None]
    for start in range(0, len(x), _CHUNK):
        stop = min(start + _CHUNK, len(x))
        noise = rng.standard_normal((stop - start, *x.shape[1:]), dtype=np.float32) * std + mean
        sel = selected[start:stop]
        out[start:stop][sel] = noise[sel]
    return out


def gaussian_stats(x_train: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel mean and standard deviation of the training images (the Gaussian's target)."""
    mean = x_train.mean(axis=(0, 2, 3), dtype=np.float64)
    std = x_train.std(axis=(0, 2, 3), dtype=np.float64)
    return mean.astype(np.float32), std.astype(np.float32)


# --------------------------------------------------------------------------------------------------
# Data-set level
# --------------------------------------------------------------------------------------------------


def randomize(data: ImageData, corruption: str = "true-labels", p: float | None = None, seed: int = 0, *,
              exclude_true_class: bool = False, corrupt_test_labels: bool = False,
              pixel_unit: str = "position") -> ImageData:
    """Return ``data`` randomized as Section 2.1 defines ``corruption`` (see the module docstring).

    The input is never modified. The result records the original labels, a per-example mask of what was
    changed, the nominal probability ``p``, the expected and the measured label noise, and a fingerprint.
    """
    p = check_p(corruption, p)
    if pixel_unit not in PIXEL_UNITS:
        raise ConfigError(must_be("pixel_unit", f"one of {', '.join(PIXEL_UNITS)}", pixel_unit, of="randomize"))
    if corruption != "true-labels" and data.corruption != "true-labels":
        raise ConfigError(f"{data.name} is already randomized ({data.corruption}); randomize the clean data once.")
    try:
        seed = int(seed)
    except (TypeError, ValueError):
        raise ConfigError(must_be("seed", "an integer", seed, of="randomize")) from None
    k = data.num_classes
    n_train, n_test = data.n_train, data.n_test
    details: dict = {"nominal_p": p}
    changes: dict = {"corruption": corruption, "p": p, "seed": seed if corruption != "true-labels" else None}

    if corruption in ("partial-labels", "random-labels"):
        y_train, sel_train = corrupt_labels(data.y_train, p, k, rng_for(seed, _STREAM["train_labels"]),
                                            exclude_true_class)
        changes.update(y_train=y_train, train_changed=y_train != data.y_train_original)
        details.update(expected_label_noise=p if exclude_true_class else p * (1 - 1 / k),
                       selected_fraction=float(sel_train.mean()) if n_train else 0.0,
                       exclude_true_class=exclude_true_class, corrupt_test_labels=corrupt_test_labels)
        if corrupt_test_labels:
            y_test, _ = corrupt_labels(data.y_test, p, k, rng_for(seed, _STREAM["test_labels"]), exclude_true_class)
            changes.update(y_test=y_test, test_changed=y_test != data.y_test_original)
    elif corruption in PIXEL_CORRUPTIONS:
        sel_train = rng_for(seed, _STREAM["shuffle_select_train"]).random(n_train) < p
        sel_test = rng_for(seed, _STREAM["shuffle_select_test"]).random(n_test) < p
        if corruption == "shuffled-pixels":
            c, h, w = data.shape
            perm = rng_for(seed, _STREAM["permutation"]).permutation(h * w if pixel_unit == "position" else c * h * w)
            x_train = permute_pixels(data.x_train, perm, sel_train, pixel_unit)
            x_test = permute_pixels(data.x_test, perm, sel_test, pixel_unit)
        elif corruption == "random-pixels":
            x_train = shuffle_each_image(data.x_train, sel_train, rng_for(seed, _STREAM["random_pixels_train"]),
                                         pixel_unit)
            x_test = shuffle_each_image(data.x_test, sel_test, rng_for(seed, _STREAM["random_pixels_test"]),
                                        pixel_unit)
        else:
            mean, std = gaussian_stats(data.x_train)
            x_train = gaussian_images(data.x_train, sel_train, mean, std, rng_for(seed, _STREAM["gaussian_train"]))
            x_test = gaussian_images(data.x_test, sel_test, mean, std, rng_for(seed, _STREAM["gaussian_test"]))
            details.update(gaussian_mean=mean.tolist(), gaussian_std=std.tolist())
        changes.update(x_train=np.ascontiguousarray(x_train), x_test=np.ascontiguousarray(x_test),
                       train_changed=sel_train, test_changed=sel_test,
                       source_train=None)  # the uncropped source no longer matches the images
        details.update(selected_fraction=float(sel_train.mean()) if n_train else 0.0, pixel_unit=pixel_unit,
                       test_images="randomized the same way")
        if corrupt_test_labels:
            raise ConfigError("corrupt_test_labels applies to label corruptions only; leave it off for "
                              f"{corruption}.")
    return data.with_changes(**changes, corruption_details=details)


# --------------------------------------------------------------------------------------------------
# Streamed data sets (image folders)
# --------------------------------------------------------------------------------------------------


def randomize_folder(cfg: RunConfig, labels_path: str | Path | None = None) -> FolderData:
    """The streamed data set of a (resolved) config: files, labels (randomized as ``cfg`` says) and
    preprocessing. With ``labels_path`` (the run folder's ``labels.npz``): read the labels from it when it
    exists, else draw them and write it (atomically) before training starts.
    """
    from .data.image_folder import list_image_folder  # here: it imports torch, and the config imports this module

    root = locate_image_folder(cfg.dataset, cfg.data_dir)
    labels_path = Path(labels_path) if labels_path is not None else None
    state = read_labels(labels_path, cfg) if labels_path is not None and labels_path.exists() else None
    if state is None:
        state = draw_folder_labels(list_image_folder(root), cfg)
        if labels_path is not None:
            write_labels(labels_path, state)
    first = root / state["train_files"][0].decode()
    if not first.is_file():
        raise DataNotFoundError(f"{first} is missing: the run's labels ({labels_path}) list the images of the folder "
                                f"it started with; point --data-dir at that folder.")
    return folder_data(cfg, root, state)


def draw_folder_labels(listing: FolderListing, cfg: RunConfig) -> dict:
    """Subset the listing (stratified, seeded) and randomize its labels as ``cfg`` says: the state that
    ``labels.npz`` holds."""
    p = check_p(cfg.corruption, cfg.p)
    tr = (stratified_subset(listing.train_labels, cfg.train_size, cfg.data_seed, STREAM_TRAIN_SUBSET)
          if cfg.train_size else np.arange(len(listing.train_labels)))
    te = (stratified_subset(listing.test_labels, cfg.test_size, cfg.data_seed, STREAM_TEST_SUBSET)
          if cfg.test_size else np.arange(len(listing.test_labels)))
    y_train, y_test = listing.train_labels[tr], listing.test_labels[te]
    k = len(listing.classes)
    new_train, new_test = y_train, y_test
    if cfg.corruption in ("partial-labels", "random-labels"):
        # the streams of randomize: the same labels an in-memory copy of this folder would get
        new_train, _ = corrupt_labels(y_train, p, k, rng_for(cfg.data_seed, _STREAM["train_labels"]),
                                      cfg.exclude_true_class)
        if cfg.corrupt_test_labels:
            new_test, _ = corrupt_labels(y_test, p, k, rng_for(cfg.data_seed, _STREAM["test_labels"]),
                                         cfg.exclude_true_class)
    return {
        "classes": np.array(listing.classes, dtype=str),
        "train_files": listing.train_files[tr], "test_files": listing.test_files[te],
        "y_train": new_train, "y_train_original": y_train, "y_test": new_test, "y_test_original": y_test,
        "meta": {"format": LABELS_FORMAT, "corruption": cfg.corruption, "p": p, "data_seed": cfg.data_seed,
                 "exclude_true_class": cfg.exclude_true_class, "corrupt_test_labels": cfg.corrupt_test_labels,
                 "train_size": cfg.train_size, "test_size": cfg.test_size,
                 "listed": {"train": len(listing.train_labels), "val": len(listing.test_labels)}},
    }
