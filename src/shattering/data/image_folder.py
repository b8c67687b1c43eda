"""Image folders (ImageNet, ILSVRC 2012, for Table 2 and Figure 2a of Zhang et al., ICLR 2017, and any folder
like it), read from disk: the listing of their images and the decoding of each image, batch by batch.

Layout (the usual one, as torchvision's ``ImageFolder`` reads it; the official validation images sorted into
class folders)::

    DIR/train/<class>/<image>.JPEG      one sub-folder per class (JPEG or PNG)
    DIR/val/<class>/<image>.JPEG        the same class names; the paper's "test" accuracy is on these

Classes are the sorted sub-folder names of ``train/``; the folder is found by
:func:`~shattering.data.location.locate_image_folder`. The data set does not fit in memory, so unlike the
other data sets (one tensor on the device, :mod:`shattering.train.in_memory`) images are decoded by a torch
``DataLoader`` with worker processes, batch by batch, in the order of the run's seeded permutation
(:mod:`shattering.train.stream`). The files and labels a run trains on are a
:class:`~shattering.data.folder_data.FolderData`.

Preprocessing (the paper reuses the TensorFlow Inception package's; exact values are not given [I]):

- test images and training images without augmentation: the shorter side resized to ``image_size / 0.875``
  (bilinear), then the central ``image_size`` x ``image_size`` window (299 for Inception V3);
- training images with augmentation (``random_crop``): a random resized crop (area 8-100%, aspect ratio
  3/4-4/3, torchvision's rule) to ``image_size``, then a left-right flip with probability 1/2, each drawn
  from a generator seeded by (seed, epoch, image), so the draws do not depend on which worker decodes what
  and a resumed run sees the same images;
- pixels / 255, then per-image whitening (the paper's CIFAR preprocessing; ``--whitening none`` keeps [0, 1]).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from ..errors import ConfigError, DataFormatError

if TYPE_CHECKING:
    from .folder_data import FolderData

IMAGE_SUFFIXES = (".jpeg", ".jpg", ".png")
EVAL_CROP_FRACTION = 0.875  # the TF Inception evaluation: central 87.5% of the image (299 of 342)
RESIZED_CROP_SCALE = (0.08, 1.0)  # torchvision's RandomResizedCrop (the Inception paper's distortion)
RESIZED_CROP_RATIO = (3 / 4, 4 / 3)
TRAIN, TEST = 0, 1  # split codes in the keys a loader receives
NO_AUGMENTATION = -1  # the epoch field of a key that asks for the evaluation transform


# --------------------------------------------------------------------------------------------------
# The listing
# --------------------------------------------------------------------------------------------------


def _images_in(folder: Path) -> list[str]:
    with os.scandir(folder) as entries:
        return sorted(e.name for e in entries if e.name.lower().endswith(IMAGE_SUFFIXES) and e.is_file())


def _class_dirs(split: Path) -> list[str]:
    with os.scandir(split) as entries:
        return sorted(e.name for e in entries if e.is_dir() and not e.name.startswith("."))


@dataclass(frozen=True)
class FolderListing:
    """The images of an image folder: relative paths (bytes, so worker processes share them without copies)
    and class indices, for both splits."""

    root: Path
    classes: tuple[str, ...]
    train_files: np.ndarray  # (N,) bytes, e.g. b"train/n01440764/n01440764_10026.JPEG"
    train_labels: np.ndarray  # (N,) int64
    test_files: np.ndarray
    test_labels: np.ndarray


def list_image_folder(root: str | Path) -> FolderListing:
    """List ``root/train/<class>/*`` and ``root/val/<class>/*`` (JPEG or PNG), classes in sorted order."""
    root = Path(root)
    classes = _class_dirs(root / "train")
    if not classes:
        raise DataFormatError(f"{root / 'train'} has no class sub-folders; expected train/<class>/<image>.JPEG "
                              "(one sub-folder per class).")
    val_classes = _class_dirs(root / "val")
    unknown = sorted(set(val_classes) - set(classes))
    if unknown:
        raise DataFormatError(f"{root / 'val'} has class folders that train/ lacks ({', '.join(unknown[:5])}"
                              f"{', ...' if len(unknown) > 5 else ''}); both splits need the same class names.")
    index = {c: i for i, c in enumerate(classes)}
    splits = {}
    for split, names in (("train", classes), ("val", val_classes)):
        files, labels = [], []
        for c in names:
            for f in _images_in(root / split / c):
                files.append(f"{split}/{c}/{f}".encode())
                labels.append(index[c])
        if not files:
            raise DataFormatError(f"{root / split} holds no JPEG or PNG images in its class folders; expected "
                                  f"{split}/<class>/<image>.JPEG.")
        splits[split] = (np.array(files, dtype=bytes), np.array(labels, dtype=np.int64))
    return FolderListing(root, tuple(classes), *splits["train"], *splits["val"])


# --------------------------------------------------------------------------------------------------
# Decoding
# --------------------------------------------------------------------------------------------------


def _pil():
    try:  # Pillow is an optional extra (shattering[imagenet]): imported only when an image is decoded
        from PIL import Image
    except ImportError:
        raise ConfigError("Reading image folders needs Pillow, which is not installed; install it with "
                          "`pip install 'shattering[imagenet]'`.") from None
    return Image


def resized_crop_box(width: int, height: int, rng: np.random.Generator) -> tuple[float, float, float, float]:
    """A random crop box (left, top, right, bottom) as torchvision's ``RandomResizedCrop`` draws it: area
    8-100% of the image, aspect ratio log-uniform in [3/4, 4/3]; ten tries, then a centre crop."""
    area = width * height
    log_ratio = (math.log(RESIZED_CROP_RATIO[0]), math.log(RESIZED_CROP_RATIO[1]))
    for _ in range(10):
        target = area * rng.uniform(*RESIZED_CROP_SCALE)
        aspect = math.exp(rng.uniform(*log_ratio))
        w = int(round(math.sqrt(target * aspect)))
        h = int(round(math.sqrt(target / aspect)))
        if 0 < w <= width and 0 < h <= height:
            top = int(rng.integers(0, height - h + 1))
            left = int(rng.integers(0, width - w + 1))
            return left, top, left + w, top + h
    ratio = width / height  # fallback: the largest centred box within the ratio bounds
    if ratio < RESIZED_CROP_RATIO[0]:
        w, h = width, int(round(width / RESIZED_CROP_RATIO[0]))
    elif ratio > RESIZED_CROP_RATIO[1]:
        w, h = int(round(height * RESIZED_CROP_RATIO[1])), height
    else:
        w, h = width, height
    left, top = (width - w) // 2, (height - h) // 2
    return left, top, left + w, top + h


def eval_box(width: int, height: int, size: int) -> tuple[float, float, float, float]:
    """The box of the original image that the evaluation transform keeps: the shorter side resized to
    ``size / 0.875``, then the central ``size`` x ``size`` window, expressed in original pixels."""
    scale = round(size / EVAL_CROP_FRACTION) / min(width, height)
    side = size / scale
    left, top = (width - side) / 2, (height - side) / 2
    return left, top, left + side, top + side


def decode(path: Path, size: int, rng: np.random.Generator | None = None) -> torch.Tensor:
    """One image as a (3, size, size) uint8 tensor: the evaluation transform, or with ``rng`` the training
    augmentation (random resized crop + flip)."""
    image_mod = _pil()
    try:
        with image_mod.open(path) as img:
            if rng is None:
                if img.format == "JPEG":  # let the JPEG decoder downscale by 2/4/8 where it keeps enough pixels
                    scale = round(size / EVAL_CROP_FRACTION) / min(img.size)
                    img.draft("RGB", (max(1, int(img.size[0] * scale)), max(1, int(img.size[1] * scale))))
                img = img.convert("RGB")
                out = img.resize((size, size), image_mod.BILINEAR, box=eval_box(*img.size, size))
            else:
                img = img.convert("RGB")
                out = img.resize((size, size), image_mod.BILINEAR, box=resized_crop_box(*img.size, rng))
                if rng.random() < 0.5:
                    out = out.transpose(image_mod.FLIP_LEFT_RIGHT)
            array = np.asarray(out, dtype=np.uint8)
    except (OSError, ValueError, SyntaxError) as exc:
        raise DataFormatError(f"{path} is not a readable image ({exc}); remove it or replace it.") from None
    return torch.from_numpy(array.copy()).permute(2, 0, 1)


class FolderImages(torch.utils.data.Dataset):
    """Images of a :class:`FolderData` by key ``(split, index, epoch)``: ``epoch`` >= 0 asks for the training
    augmentation drawn from (seed, epoch, index), :data:`NO_AUGMENTATION` for the evaluation transform.
    Returns ``(uint8 image (3, S, S), index)``; labels stay with the trainer."""

    def __init__(self, data: FolderData, seed: int):
        self.root = data.root
        self.files = (data.train_files, data.test_files)
        self.size = data.image_size
        self.seed = int(seed)

    def __len__(self) -> int:
        return len(self.files[TRAIN]) + len(self.files[TEST])

    def __getitem__(self, key: tuple[int, int, int]) -> tuple[torch.Tensor, int]:
        split, index, epoch = key
        rng = None
        if epoch != NO_AUGMENTATION:
            rng = np.random.default_rng(np.random.SeedSequence([self.seed, 7, int(epoch), int(index)]))
        return decode(self.root / self.files[split][index].decode(), self.size, rng), index


class BatchPlan:
    """A batch sampler whose batches the trainer sets before each pass (so one loader, with persistent
    workers, serves every epoch and evaluation)."""

    def __init__(self):
        self.batches: list[list[tuple[int, int, int]]] = []

    def __iter__(self):
        return iter(self.batches)

    def __len__(self) -> int:
        return len(self.batches)


SHM_CAP = 2 * 1024**3  # bytes of decoded batches in flight in shared memory, at most (whatever /dev/shm holds)
PREFETCH = 4  # batches each decoding worker prepares ahead, where the budget allows


def shm_budget(path: str = "/dev/shm") -> int:
    """Bytes the loader's batches in flight may hold in shared memory: half the free space of ``path`` (the
    workers hand each batch over in /dev/shm; a container's is often 64 MB), and at most :data:`SHM_CAP`
    (2 GiB); :data:`SHM_CAP` where ``path`` cannot be read."""
    try:
        st = os.statvfs(path)
    except (OSError, AttributeError):  # no /dev/shm (another OS): the fixed cap
        return SHM_CAP
    return min(SHM_CAP, st.f_bavail * st.f_frsize // 2)


@dataclass(frozen=True)
class LoaderSizes:
    """How many decoding workers, batches each prepares ahead (``prefetch``), and images per evaluation batch,
    so that the batches in flight (``workers * prefetch`` of them) fit the shared-memory budget."""

    workers: int
    prefetch: int | None
    eval_batch_size: int


def loader_sizes(image_size: int, batch_size: int, eval_batch_size: int, workers: int, budget: int) -> LoaderSizes:
    """Sizes whose batches in flight stay within ``budget`` bytes (:func:`shm_budget`). Images travel as uint8,
    3 x S x S bytes each (268 kB at 299 px): 8 workers x 4 batches of 1,024 would be 8.8 GB. In order: each
    worker must hold one training batch (``batch_size`` is the run's, so workers are dropped first, never
    below one: with less shared memory than one training batch that one is over the budget); an evaluation
    batch is cut to what ``PREFETCH`` per worker allows, but not below the training batch (then each worker
    prepares fewer ahead), and never past what one per worker allows; ``prefetch`` is then the most
    batches of the larger kind that fit, 1 to ``PREFETCH``. Without workers nothing is in shared memory."""
    if workers == 0:
        return LoaderSizes(0, None, eval_batch_size)
    image = 3 * image_size * image_size
    workers = max(1, min(workers, budget // (batch_size * image)))
    per_worker = budget // (workers * image)  # images one worker may hold in flight
    eval_batch = max(1, min(eval_batch_size, max(batch_size, per_worker // PREFETCH), per_worker))
    prefetch = max(1, min(PREFETCH, per_worker // max(batch_size, eval_batch)))
    return LoaderSizes(workers, prefetch, eval_batch)


def make_loader(images: FolderImages, workers: int | None, pin_memory: bool, batch_size: int,
                eval_batch_size: int, budget: int | None = None) -> tuple:
    """``(loader, plan, sizes)``: a DataLoader over ``images`` driven by ``plan.batches``, with the
    :class:`LoaderSizes` that keep its batches in flight within ``budget`` bytes of shared memory (default
    :func:`shm_budget`); the trainer evaluates in batches of ``sizes.eval_batch_size``."""
    if workers is None:
        workers = min(8, os.cpu_count() or 1)
    sizes = loader_sizes(images.size, batch_size, eval_batch_size, workers,
                         shm_budget() if budget is None else budget)
    plan = BatchPlan()
    loader = torch.utils.data.DataLoader(images, batch_sampler=plan, num_workers=sizes.workers,
                                         pin_memory=pin_memory, persistent_workers=sizes.workers > 0,
                                         prefetch_factor=sizes.prefetch)
    return loader, plan, sizes
