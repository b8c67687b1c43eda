"""A prepared data set: the exact arrays a model trains and is tested on, and what was done to them.

``prepare`` turns :class:`~shattering.data.readers.RawData` into :class:`ImageData` (subset, scale, crop,
whiten); :mod:`shattering.corruptions` turns an :class:`ImageData` into a randomized one. Every
:class:`ImageData` carries the original labels, a per-example mask of what was changed, the nominal and
effective noise rates and a fingerprint (a hash of the exact arrays) that every run records.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field, replace
from functools import cached_property

import numpy as np

from ..errors import ConfigError
from ..validation import setting_must_be
from .catalogue import dataset_info
from .preprocess import (
    WHITENINGS,
    center_crop,
    channel_stats,
    per_channel_whitening,
    per_image_whitening,
    scale_pixels,
)
from .readers import RawData, load_raw

# Independent random streams derived from one data seed (numpy SeedSequence spawn keys).
STREAM_TRAIN_SUBSET = 1
STREAM_TEST_SUBSET = 2


def rng_for(seed: int, stream: int) -> np.random.Generator:
    """A generator for one purpose (``stream``), independent of every other stream of the same seed."""
    return np.random.default_rng(np.random.SeedSequence([int(seed), int(stream)]))


def stratified_subset(y: np.ndarray, size: int, seed: int, stream: int = STREAM_TRAIN_SUBSET) -> np.ndarray:
    """Indices of a class-stratified random subset of ``size`` examples, in their original order.

    Each class gets its share of ``size`` in proportion to its frequency (largest remainders round), so a
    subset of a balanced data set stays balanced.
    """
    y = np.asarray(y)
    n = len(y)
    if size >= n:
        return np.arange(n)
    rng = rng_for(seed, stream)
    classes, counts = np.unique(y, return_counts=True)
    quota = counts * size / n
    take = np.floor(quota).astype(int)
    order = np.argsort(-(quota - take), kind="stable")
    take[order[: size - take.sum()]] += 1
    chosen = [rng.choice(np.flatnonzero(y == c), size=k, replace=False) for c, k in zip(classes, take, strict=True)]
    return np.sort(np.concatenate(chosen))


def hash_arrays(arrays, extra: bytes = b"") -> str:
    """BLAKE2b (32 hex digits) of arrays' dtypes, shapes and bytes, then ``extra``: a data fingerprint."""
    h = hashlib.blake2b(digest_size=16)
    for a in arrays:
        a = np.ascontiguousarray(a)
        h.update(f"{a.dtype.str}{a.shape}".encode())
        h.update(memoryview(a).cast("B"))
    h.update(extra)
    return h.hexdigest()


class LabelledSplits:
    """What every prepared data set reports about its splits and labels, in memory or streamed from disk.

    Needs ``class_names``, ``y_train``, ``y_train_original``, ``train_changed``, ``y_test`` and
    ``y_test_original``.
    """

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def n_train(self) -> int:
        return len(self.y_train)

    @property
    def n_test(self) -> int:
        return len(self.y_test)

    @property
    def corrupted_fraction(self) -> float:
        """Share of training examples whose label or image was changed."""
        return float(self.train_changed.mean()) if self.n_train else 0.0

    @property
    def label_noise(self) -> float:
        """Share of training labels that now differ from the original (the effective noise rate)."""
        return float((self.y_train != self.y_train_original).mean()) if self.n_train else 0.0

    @property
    def test_label_noise(self) -> float:
        return float((self.y_test != self.y_test_original).mean()) if self.n_test else 0.0

    def missing_classes(self) -> dict[str, list[int]]:
        """The classes with no example in a split (by the data's own labels, before any corruption: random labels
        missing a class are the randomization's doing), by split; empty where every class has one."""
        out = {}
        for split, y in (("train", self.y_train_original), ("test", self.y_test_original)):
            missing = np.flatnonzero(np.bincount(np.asarray(y, dtype=np.int64), minlength=self.num_classes) == 0)
            if len(missing):
                out[split] = missing.tolist()
        return out

    def warnings(self) -> list[str]:
        """What a user must know about these data before reading a result: a class with no example in a split."""
        why = {"train": "training split: a network never sees them, and test examples of them count as wrong",
               "test": "test split: test accuracy says nothing about them"}
        out = []
        for split, missing in self.missing_classes().items():
            names = ", ".join(self.class_names[c] for c in missing[:5]) + (
                f" and {len(missing) - 5} more" if len(missing) > 5 else "")
            out.append(f"{len(missing)} of the {self.num_classes} classes ({names}) "
                       f"{'has' if len(missing) == 1 else 'have'} no example in the {why[split]}.")
        return out

    def describe(self) -> dict:
        """A JSON-ready summary (what ``shatter data show --json`` prints); needs ``name``, ``shape``,
        ``corruption``, ``p``, ``seed``, ``corruption_details``, ``preprocessing`` and ``fingerprint`` too."""
        return {
            "name": self.name,
            "n_train": self.n_train,
            "n_test": self.n_test,
            "shape": list(self.shape),
            "classes": self.num_classes,
            "class_names": list(self.class_names),
            "corruption": self.corruption,
            "p": self.p,
            "seed": self.seed,
            "corrupted_fraction": self.corrupted_fraction,
            "label_noise": self.label_noise,
            "test_label_noise": self.test_label_noise,
            **self.corruption_details,
            "preprocessing": self.preprocessing,
            "fingerprint": self.fingerprint,
            "missing_classes": self.missing_classes(),
            "warnings": self.warnings(),
        }


@dataclass(eq=False)
class ImageData(LabelledSplits):
    """Training and test arrays at the scale the model sees, shape (N, C, H, W), with their history."""

    name: str
    class_names: tuple[str, ...]
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    y_train_original: np.ndarray
    y_test_original: np.ndarray
    train_changed: np.ndarray  # bool per training example: was its label or image changed?
    test_changed: np.ndarray
    preprocessing: dict
    corruption: str = "true-labels"
    p: float = 0.0
    seed: int | None = None
    corruption_details: dict = field(default_factory=dict)
    # Uncropped raw training images (for a random crop from the full image, CIFAR) and how to scale them.
    source_train: np.ndarray | None = None

    @property
    def shape(self) -> tuple[int, int, int]:
        return tuple(int(s) for s in self.x_train.shape[1:])

    @cached_property
    def fingerprint(self) -> str:
        """BLAKE2b of the exact arrays a model trains and is tested on (32 hex digits)."""
        arrays = [self.x_train, self.y_train, self.x_test, self.y_test]
        if self.source_train is not None:
            arrays.append(self.source_train)
        return hash_arrays(arrays)

    def with_changes(self, **changes) -> ImageData:
        """A copy with some arrays replaced (the fingerprint is recomputed)."""
        return replace(self, **changes)


def prepare(raw: RawData, *, train_size: int | None = None, test_size: int | None = None, subset_seed: int = 0,
            crop: int | None | str = "default", whitening: str = "default", keep_source: bool = False) -> ImageData:
    """Subset, scale, crop and whiten ``raw`` as the paper does (Appendix A).

    ``crop`` and ``whitening`` default to the data set's defaults (CIFAR: centre crop 28, per-image
    whitening). ``keep_source`` keeps the uncropped raw training images so that a random crop can be taken
    from the full image (the paper's CIFAR augmentation) instead of from a padded crop.
    """
    info = dataset_info(raw.name)
    crop = info.crop if crop == "default" else crop
    whitening = info.whitening if whitening == "default" else whitening
    if whitening not in WHITENINGS:
        raise ConfigError(setting_must_be("whitening", f"one of {', '.join(WHITENINGS)}", whitening))
    h, w = raw.x_train.shape[-2:]
    if crop is not None and (crop < 1 or crop > min(h, w)):
        raise ConfigError(setting_must_be("crop", f"between 1 and {min(h, w)} for {raw.name} ({h}x{w})", crop))
    for label, size, total in (("train_size", train_size, len(raw.y_train)), ("test_size", test_size, len(raw.y_test))):
        if size is not None and not 1 <= size <= total:
            raise ConfigError(setting_must_be(label, f"between 1 and {total} for {raw.name}", size))
    tr = stratified_subset(raw.y_train, train_size, subset_seed, STREAM_TRAIN_SUBSET) if train_size else None
    te = stratified_subset(raw.y_test, test_size, subset_seed, STREAM_TEST_SUBSET) if test_size else None
    x_train_raw = raw.x_train if tr is None else raw.x_train[tr]
    y_train = raw.y_train if tr is None else raw.y_train[tr]
    x_test_raw = raw.x_test if te is None else raw.x_test[te]
    y_test = raw.y_test if te is None else raw.y_test[te]

    x_train = center_crop(scale_pixels(x_train_raw, info.pixel_scale), crop)
    x_test = center_crop(scale_pixels(x_test_raw, info.pixel_scale), crop)
    details = {"pixel_scale": info.pixel_scale, "crop": crop, "whitening": whitening, "train_size": len(y_train),
               "test_size": len(y_test), "subset_seed": subset_seed if (tr is not None or te is not None) else None,
               "source": raw.location}
    if whitening == "per-image":
        x_train, x_test = per_image_whitening(x_train), per_image_whitening(x_test)
    elif whitening == "per-channel":
        mean, std = channel_stats(x_train)
        x_train, x_test = per_channel_whitening(x_train, mean, std), per_channel_whitening(x_test, mean, std)
        details["channel_mean"], details["channel_std"] = mean.tolist(), std.tolist()
    y_train = np.ascontiguousarray(y_train, dtype=np.int64)
    y_test = np.ascontiguousarray(y_test, dtype=np.int64)
    source = None
    if keep_source and crop is not None and crop < min(h, w):
        source = np.ascontiguousarray(x_train_raw)
    return ImageData(
        name=raw.name, class_names=raw.class_names,
        x_train=np.ascontiguousarray(x_train), y_train=y_train,
        x_test=np.ascontiguousarray(x_test), y_test=y_test,
        y_train_original=y_train, y_test_original=y_test,
        train_changed=np.zeros(len(y_train), bool), test_changed=np.zeros(len(y_test), bool),
        preprocessing=details, source_train=source,
    )


def load_dataset(name: str = "digits", *, data_dir=None, download: bool | None = None, train_size: int | None = None,
                 test_size: int | None = None, subset_seed: int = 0, crop="default", whitening: str = "default",
                 keep_source: bool = False, progress: bool = True) -> ImageData:
    """Read data set ``name`` and prepare it as the paper does; see :func:`prepare`."""
    raw = load_raw(name, data_dir=data_dir, download=download, progress=progress)
    return prepare(raw, train_size=train_size, test_size=test_size, subset_seed=subset_seed, crop=crop,
                   whitening=whitening, keep_source=keep_source)
