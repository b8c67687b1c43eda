"""The samples the theory experiments run on: a stratified subset of a data set, its labels (true, partially
corrupted or random, Section 2.1 of Zhang et al., ICLR 2017) and flattened float64 copies for linear algebra.

Label sets come from :func:`shattering.corruptions.randomize`, so "random" here is exactly the paper's (and
the rest of shattering's) random labels: drawn once, from their own seeded stream, test labels clean.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..corruptions import randomize
from ..data import ImageData, dataset_info, load_dataset
from ..data.preprocess import WHITENINGS
from ..errors import ConfigError
from ..validation import check_choice, check_int, check_probability

# Short label-set names (the CLI's --labels) and the corruption each stands for.
LABEL_SETS = {"true": "true-labels", "partial": "partial-labels", "random": "random-labels"}


@dataclass(eq=False)
class Sample:
    """A prepared subset of a data set, with its images (N, C, H, W) and clean labels.

    ``data`` is the :class:`~shattering.data.ImageData` the sample came from (clean labels); use
    :meth:`labels` for corrupted label sets and :meth:`flat` for (n, d) float64 matrices.
    """

    data: ImageData

    @property
    def name(self) -> str:
        return self.data.name

    @property
    def num_classes(self) -> int:
        return self.data.num_classes

    @property
    def n_train(self) -> int:
        return self.data.n_train

    @property
    def n_test(self) -> int:
        return self.data.n_test

    def flat(self, split: str = "train") -> np.ndarray:
        """The images of ``split`` as an (n, C*H*W) float64 matrix."""
        x = self.data.x_train if split == "train" else self.data.x_test
        return np.ascontiguousarray(x.reshape(len(x), -1), dtype=np.float64)

    def labels(self, kind: str = "true", p: float | None = None, seed: int = 0) -> np.ndarray:
        """Training labels of label set ``kind`` ("true", "partial" with probability ``p``, or "random")."""
        kind = check_choice(kind, "label set", tuple(LABEL_SETS))
        if kind == "true":
            return self.data.y_train
        if kind == "partial":
            if p is None:
                raise ConfigError("The label set 'partial' needs a corruption probability: pass p in [0, 1] (--p).")
            p = check_probability(p)
        return randomize(self.data, LABEL_SETS[kind], p if kind == "partial" else None, seed).y_train

    def describe(self) -> dict:
        return {"dataset": self.name, "n_train": self.n_train, "n_test": self.n_test,
                "shape": list(self.data.shape), "classes": self.num_classes,
                "preprocessing": {k: v for k, v in self.data.preprocessing.items() if k != "source"},
                "fingerprint": self.data.fingerprint}


def load_sample(dataset: str = "digits", n_train: int | None = None, n_test: int | None = None, *,
                seed: int = 0, whitening: str = "default", data_dir=None, train_name: str = "n_train") -> Sample:
    """A class-stratified subset of ``dataset``: ``n_train`` training and ``n_test`` test images.

    Parameters
    ----------
    dataset : str
        A name known to :mod:`shattering.data` (``digits``, ``mnist1d``, ``mnist``, ``fashion-mnist``, ...).
    n_train, n_test : int or None, default=None
        Subset sizes; None takes the whole split.
    seed : int, default=0
        Seed of the subset draw.
    train_name : str, default="n_train"
        How error messages call ``n_train`` (the caller's own parameter name, e.g. "n").
    whitening : {"default", "per-image", "per-channel", "none"}, default="default"
        Preprocessing after scaling pixels to [0, 1]; "default" is the data set's own (per-image whitening for
        the image data sets, as the paper does for CIFAR-10). "none" is the paper's "no preprocessing".
    """
    info = dataset_info(dataset)
    if n_train is not None:
        n_train = check_int(n_train, train_name, maximum=info.n_train)
    if n_test is not None:
        n_test = check_int(n_test, "n_test", maximum=info.n_test)
    if whitening != "default":
        check_choice(whitening, "whitening", WHITENINGS)
    data = load_dataset(dataset, train_size=n_train, test_size=n_test, subset_seed=int(seed), whitening=whitening,
                        data_dir=data_dir, progress=False)
    return Sample(data)
