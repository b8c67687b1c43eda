"""ImageNet (ILSVRC 2012) for Table 2 and Figure 2a of Zhang et al. (ICLR 2017), and any image folder like it:
streamed from disk, with labels randomized once and stored beside the run.

Layout (the usual one, as torchvision's ``ImageFolder`` reads it; the official validation images sorted into
class folders)::

    DIR/train/<class>/<image>.JPEG      one sub-folder per class (JPEG or PNG)
    DIR/val/<class>/<image>.JPEG        the same class names; the paper's "test" accuracy is on these

Classes are the sorted sub-folder names of ``train/``. The data set does not fit in memory, so unlike the
other data sets (one tensor on the device, :mod:`shattering.train.in_memory`) images are decoded by a torch
``DataLoader`` with worker processes, batch by batch, in the order of the run's seeded permutation
(:mod:`shattering.train.stream`).

Labels are what the randomization tests change. They are drawn once, from the data seed, with the same
streams as :func:`shattering.corruptions.randomize` (so a folder gets the labels its in-memory copy would),
and written to ``labels.npz`` in the run folder together with the list of image files they belong to. A
resumed run reads them back instead of listing the folder again: it trains on exactly the files and labels it
started with, even if the folder changed since. Test labels stay clean unless ``corrupt_test_labels``.

Preprocessing (the paper reuses the TensorFlow Inception package's; exact values are not given [I]):

- test images and training images without augmentation: the shorter side resized to ``image_size / 0.875``
  (bilinear), then the central ``image_size`` x ``image_size`` window (299 for Inception V3);
- training images with augmentation (``random_crop``): a random resized crop (area 8-100%, aspect ratio
  3/4-4/3, torchvision's rule) to ``image_size``, then a left-right flip with probability 1/2, each drawn
  from a generator seeded by (seed, epoch, image), so the draws do not depend on which worker decodes what
  and a resumed run sees the same images;
- pixels / 255, then per-image whitening (the paper's CIFAR preprocessing; ``--whitening none`` keeps [0, 1]).

The fingerprint covers the file list, the labels and the preprocessing, not the pixel bytes (hashing 140 GB
for every run would take longer than an epoch).
"""

from __future__ import annotations

import io
import json
import math
import os
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np
import torch

from ..errors import ConfigError, DataFormatError, DataNotFoundError, RecordError
from .dataset import STREAM_TEST_SUBSET, STREAM_TRAIN_SUBSET, LabelledSplits, hash_arrays, rng_for, stratified_subset
from .registry import candidate_dirs, dataset_info, missing_image_folder_message

IMAGE_SUFFIXES = (".jpeg", ".jpg", ".png")
LABELS_FILE = "labels.npz"
LABELS_FORMAT = 1
EVAL_CROP_FRACTION = 0.875  # the TF Inception evaluation: central 87.5% of the image (299 of 342)
RESIZED_CROP_SCALE = (0.08, 1.0)  # torchvision's RandomResizedCrop (the Inception paper's distortion)
RESIZED_CROP_RATIO = (3 / 4, 4 / 3)
TRAIN, TEST = 0, 1  # split codes in the keys a loader receives
NO_AUGMENTATION = -1  # the epoch field of a key that asks for the evaluation transform


# --------------------------------------------------------------------------------------------------
# The folder and its listing
# --------------------------------------------------------------------------------------------------


def locate_image_folder(name: str, data_dir: str | Path | None = None) -> Path:
    """The folder holding ``train/`` and ``val/`` for data set ``name``, or one sentence saying what to do."""
    info = dataset_info(name)
    for folder in candidate_dirs(info, data_dir):
        if (folder / "train").is_dir() and (folder / "val").is_dir():
            return folder
    raise DataNotFoundError(missing_image_folder_message(info, data_dir))


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
# The data set a run trains on
# --------------------------------------------------------------------------------------------------


@dataclass(eq=False)
class FolderData(LabelledSplits):
    """A streamed data set: image files and (randomized) labels; the pixels stay on disk.

    Offers what the run's bookkeeping reads from :class:`~shattering.data.dataset.ImageData` (shape, class
    count, labels, what was changed, fingerprint, ``describe()``), so records, summaries, resume and fit
    detection are the in-memory path's.
    """

    name: str
    root: Path
    class_names: tuple[str, ...]
    train_files: np.ndarray
    test_files: np.ndarray
    y_train: np.ndarray
    y_test: np.ndarray
    y_train_original: np.ndarray
    y_test_original: np.ndarray
    train_changed: np.ndarray
    test_changed: np.ndarray
    image_size: int
    preprocessing: dict
    corruption: str = "true-labels"
    p: float = 0.0
    seed: int | None = None
    corruption_details: dict = field(default_factory=dict)
    source_train: None = None  # no uncropped copy: augmentation happens at decode time

    @property
    def shape(self) -> tuple[int, int, int]:
        return (3, self.image_size, self.image_size)

    @cached_property
    def fingerprint(self) -> str:
        """BLAKE2b of the file lists, the labels and the preprocessing (32 hex digits)."""
        return hash_arrays((self.train_files, self.y_train, self.test_files, self.y_test),
                           json.dumps(self.preprocessing_key(), sort_keys=True).encode())

    def preprocessing_key(self) -> dict:
        return {k: self.preprocessing[k] for k in ("image_size", "whitening", "eval_resize")}

    def describe(self) -> dict:
        return {**super().describe(), "streamed": True}


def load_folder_data(cfg, labels_path: str | Path | None = None) -> FolderData:
    """The streamed data set of a (resolved) config: files, labels (randomized as ``cfg`` says) and
    preprocessing. With ``labels_path`` (the run folder's ``labels.npz``): read the labels from it when it
    exists, else draw them and write it (atomically) before training starts.
    """
    root = locate_image_folder(cfg.dataset, cfg.data_dir)
    labels_path = Path(labels_path) if labels_path is not None else None
    state = read_labels(labels_path, cfg) if labels_path is not None and labels_path.exists() else None
    if state is None:
        state = draw_labels(list_image_folder(root), cfg)
        if labels_path is not None:
            write_labels(labels_path, state)
    first = root / state["train_files"][0].decode()
    if not first.is_file():
        raise DataNotFoundError(f"{first} is missing: the run's labels ({labels_path}) list the images of the folder "
                                f"it started with; point --data-dir at that folder.")
    return _folder_data(cfg, root, state)


def draw_labels(listing: FolderListing, cfg) -> dict:
    """Subset the listing (stratified, seeded) and randomize its labels as ``cfg`` says: the state that
    ``labels.npz`` holds."""
    from ..corruptions import _STREAM, check_p, corrupt_labels

    p = check_p(cfg.corruption, cfg.p)
    tr = (stratified_subset(listing.train_labels, cfg.train_size, cfg.data_seed, STREAM_TRAIN_SUBSET)
          if cfg.train_size else np.arange(len(listing.train_labels)))
    te = (stratified_subset(listing.test_labels, cfg.test_size, cfg.data_seed, STREAM_TEST_SUBSET)
          if cfg.test_size else np.arange(len(listing.test_labels)))
    y_train, y_test = listing.train_labels[tr], listing.test_labels[te]
    k = len(listing.classes)
    new_train, new_test = y_train, y_test
    if cfg.corruption in ("partial-labels", "random-labels"):
        # the streams of corruptions.randomize: the same labels an in-memory copy of this folder would get
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


def write_labels(path: Path, state: dict) -> None:
    """``labels.npz``: the run's files and labels (plain arrays, no pickles), written atomically."""
    from ..files import atomic_write_bytes

    buf = io.BytesIO()
    arrays = {k: v for k, v in state.items() if k != "meta"}
    np.savez(buf, meta=np.array(json.dumps(state["meta"], sort_keys=True)), **arrays)
    atomic_write_bytes(path, buf.getvalue())


def read_labels(path: Path, cfg) -> dict:
    """The state written by :func:`write_labels`, checked against ``cfg``'s corruption settings."""
    try:
        with np.load(path, allow_pickle=False) as z:
            state = {k: z[k] for k in z.files}
        state["meta"] = json.loads(str(state["meta"]))
    except (OSError, ValueError, KeyError) as exc:
        raise RecordError(f"The labels file {path} is damaged ({type(exc).__name__}); delete the run folder to "
                          "start the run again.") from None
    meta = state["meta"]
    wanted = {"corruption": cfg.corruption, "data_seed": cfg.data_seed, "train_size": cfg.train_size,
              "test_size": cfg.test_size}
    changed = [k for k, v in wanted.items() if meta.get(k) != v]
    if changed:
        raise RecordError(f"The labels file {path} was drawn for other settings ({', '.join(changed)}); it "
                          "belongs to another run. Delete it to draw the labels again.")
    return state


def _folder_data(cfg, root: Path, state: dict) -> FolderData:
    meta = state["meta"]
    k = len(state["classes"])
    train_changed = state["y_train"] != state["y_train_original"]
    test_changed = state["y_test"] != state["y_test_original"]
    details = {"nominal_p": meta["p"]}
    if cfg.corruption in ("partial-labels", "random-labels"):
        p = meta["p"]
        details.update(expected_label_noise=p if meta["exclude_true_class"] else p * (1 - 1 / k),
                       exclude_true_class=meta["exclude_true_class"],
                       corrupt_test_labels=meta["corrupt_test_labels"])
    resize = round(cfg.image_size / EVAL_CROP_FRACTION)
    preprocessing = {
        "image_size": cfg.image_size, "whitening": cfg.whitening, "pixel_scale": 255.0,
        "eval_resize": f"shorter side to {resize}, central {cfg.image_size}x{cfg.image_size}",
        "augmentation": ("random resized crop (area 8-100%, aspect 3/4-4/3) + left-right flip"
                         if cfg.random_crop else "none"),
        "train_size": len(state["y_train"]), "test_size": len(state["y_test"]),
        "listed": meta.get("listed"), "source": str(root), "labels_file": LABELS_FILE,
    }
    return FolderData(
        name=cfg.dataset, root=root, class_names=tuple(str(c) for c in state["classes"]),
        train_files=state["train_files"], test_files=state["test_files"],
        y_train=state["y_train"].astype(np.int64), y_test=state["y_test"].astype(np.int64),
        y_train_original=state["y_train_original"].astype(np.int64),
        y_test_original=state["y_test_original"].astype(np.int64),
        train_changed=train_changed, test_changed=test_changed, image_size=int(cfg.image_size),
        preprocessing=preprocessing, corruption=cfg.corruption, p=float(meta["p"]),
        seed=cfg.data_seed if cfg.corruption != "true-labels" else None, corruption_details=details,
    )


# --------------------------------------------------------------------------------------------------
# Decoding
# --------------------------------------------------------------------------------------------------


def _pil():
    try:
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


def make_loader(images: FolderImages, workers: int | None, pin_memory: bool) -> tuple:
    """``(loader, plan)``: a DataLoader over ``images`` driven by ``plan.batches``."""
    if workers is None:
        workers = min(8, os.cpu_count() or 1)
    plan = BatchPlan()
    loader = torch.utils.data.DataLoader(images, batch_sampler=plan, num_workers=workers, pin_memory=pin_memory,
                                         persistent_workers=workers > 0, prefetch_factor=4 if workers else None)
    return loader, plan
