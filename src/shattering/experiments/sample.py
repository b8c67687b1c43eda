"""The samples the theory experiments run on: a stratified subset of a data set, its labels (true, partially
corrupted or random, Section 2.1 of Zhang et al., ICLR 2017) and flattened float64 copies for linear algebra.

Label sets are named as the corruptions of :mod:`shattering.corruptions` (``true-labels``, ``partial-labels``
with ``p``, ``random-labels``) and come from :func:`shattering.corruptions.randomize`, so "random" here is
exactly the paper's (and the rest of shattering's) random labels: drawn once, from their own seeded stream,
test labels clean.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..corruptions import LABEL_CORRUPTIONS, randomize
from ..data import ImageData, dataset_info, load_dataset
from ..data.preprocess import WHITENINGS
from ..errors import ConfigError
from ..validation import check_choice, check_choices, check_int, check_probability


def check_label_sets(corruption: str | list[str], name: str = "corruption") -> list[str]:
    """The label corruptions named in ``corruption`` (comma-separated or a list), each checked."""
    return check_choices(corruption, name, LABEL_CORRUPTIONS)


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

    def labels(self, corruption: str = "true-labels", p: float | None = None, seed: int = 0) -> np.ndarray:
        """Training labels under ``corruption`` ("true-labels", "partial-labels" with probability ``p``, or
        "random-labels"), drawn with ``seed``; ``p`` is ignored by the other two."""
        corruption = check_choice(corruption, "corruption", LABEL_CORRUPTIONS)
        if corruption == "true-labels":
            return self.data.y_train
        if corruption == "partial-labels":
            if p is None:
                raise ConfigError("The label set 'partial-labels' needs a corruption probability: pass p in [0, 1] "
                                  "(--p).")
            p = check_probability(p)
        return randomize(self.data, corruption, p if corruption == "partial-labels" else None, seed).y_train

    def describe(self) -> dict:
        return {"dataset": self.name, "n_train": self.n_train, "n_test": self.n_test,
                "shape": list(self.data.shape), "classes": self.num_classes,
                "preprocessing": {k: v for k, v in self.data.preprocessing.items() if k != "source"},
                "fingerprint": self.data.fingerprint}


def load_sample(dataset: str = "digits", train_size: int | None = None, test_size: int | None = None, *,
                seed: int = 0, whitening: str = "default", data_dir: str | Path | None = None) -> Sample:
    """A class-stratified subset of ``dataset``: ``train_size`` training and ``test_size`` test images.

    Parameters
    ----------
    dataset : str
        A name known to :mod:`shattering.data` (``digits``, ``mnist1d``, ``mnist``, ``fashion-mnist``, ...).
    train_size, test_size : int or None, default=None
        Subset sizes; None takes the whole split.
    seed : int, default=0
        Seed of the subset draw (the commands' ``--data-seed``).
    whitening : {"default", "per-image", "per-channel", "none"}, default="default"
        Preprocessing after scaling pixels to [0, 1]; "default" is the data set's own (per-image whitening for
        the image data sets, as the paper does for CIFAR-10). "none" is the paper's "no preprocessing".
    data_dir : str, Path or None, default=None
        A folder holding the data set's files (else the cache and the usual places).
    """
    info = dataset_info(dataset)
    if train_size is not None:
        train_size = check_int(train_size, "train_size", maximum=info.n_train)
    if test_size is not None:
        test_size = check_int(test_size, "test_size", maximum=info.n_test)
    if whitening != "default":
        check_choice(whitening, "whitening", WHITENINGS)
    data = load_dataset(dataset, train_size=train_size, test_size=test_size, subset_seed=int(seed),
                        whitening=whitening, data_dir=data_dir, progress=False)
    return Sample(data)
