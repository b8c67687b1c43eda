"""The data one run trains on: its data set loaded and prepared as the config says, then randomized by its
corruption (Section 2.1: true labels, partially corrupted labels, random labels, shuffled or random pixels,
Gaussian images).
"""

from __future__ import annotations

from pathlib import Path

from ..config import RunConfig
from ..corruptions import randomize, randomize_folder
from ..data.catalogue import dataset_info
from ..data.dataset import ImageData, load_dataset
from ..data.folder_data import LABELS_FILE, FolderData


def streamed(cfg: RunConfig) -> bool:
    """True for data sets read from disk batch by batch (image folders: ImageNet)."""
    return dataset_info(cfg.dataset).kind == "image-folder"


def make_data(config: RunConfig, progress: bool = False, *,
              labels_dir: str | Path | None = None) -> ImageData | FolderData:
    """Load, prepare and randomize the data of a (resolved) config: the arrays the run trains on. A streamed
    data set (ImageNet) gives a :class:`~shattering.data.folder_data.FolderData` instead: files and labels, the
    labels kept in the existing folder ``labels_dir`` (``labels.npz``; the run's record folder) when given."""
    cfg = config.resolved()
    if streamed(cfg):
        return randomize_folder(cfg, Path(labels_dir) / LABELS_FILE if labels_dir is not None else None)
    data = load_dataset(cfg.dataset, data_dir=cfg.data_dir, train_size=cfg.train_size, test_size=cfg.test_size,
                        subset_seed=cfg.data_seed, crop=cfg.crop or None, whitening=cfg.whitening,
                        keep_source=cfg.random_crop, progress=progress)
    return randomize(data, cfg.corruption, cfg.p, cfg.data_seed, exclude_true_class=cfg.exclude_true_class,
                     corrupt_test_labels=cfg.corrupt_test_labels, pixel_unit=cfg.pixel_unit)
