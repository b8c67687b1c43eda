"""The streamed data set a run trains on (ImageNet, Table 2 and Figure 2a of Zhang et al., ICLR 2017): image
files and labels, the pixels staying on disk, and the labels file kept beside the run.

Labels are what the randomization tests change. They are drawn once, from the data seed
(:func:`shattering.corruptions.randomize_folder`, with the same streams as
:func:`shattering.corruptions.randomize`, so a folder gets the labels its in-memory copy would), and written to
``labels.npz`` in the run folder together with the list of image files they belong to. A resumed run reads
them back instead of listing the folder again: it trains on exactly the files and labels it started with, even
if the folder changed since. Test labels stay clean unless ``corrupt_test_labels``.

The fingerprint covers the file list, the labels and the preprocessing, not the pixel bytes (hashing 140 GB
for every run would take longer than an epoch).
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..errors import RecordError
from ..files import atomic_write_bytes
from .dataset import LabelledSplits, hash_arrays

if TYPE_CHECKING:
    from ..config import RunConfig

LABELS_FILE = "labels.npz"
LABELS_FORMAT = 1


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


def write_labels(path: Path, state: dict) -> None:
    """``labels.npz``: the run's files and labels (plain arrays, no pickles), written atomically."""
    buf = io.BytesIO()
    arrays = {k: v for k, v in state.items() if k != "meta"}
    np.savez(buf, meta=np.array(json.dumps(state["meta"], sort_keys=True)), **arrays)
    atomic_write_bytes(path, buf.getvalue())


def read_labels(path: Path, cfg: RunConfig) -> dict:
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


def folder_data(cfg: RunConfig, root: Path, state: dict) -> FolderData:
    """The :class:`FolderData` of a (resolved) config from the state ``labels.npz`` holds."""
    from .image_folder import EVAL_CROP_FRACTION  # here: it imports torch, and the config imports this module

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
