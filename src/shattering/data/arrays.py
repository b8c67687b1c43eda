"""The researcher's own data as arrays: :class:`ArrayData`, and the checks every user data set passes (arrays in
memory, an .npz file, an image folder: :mod:`shattering.data.user_data`) before the paper's preprocessing
(Appendix A: pixels / scale, crop, per-image whitening) and the randomizations of Section 2.1 apply to it
unchanged.

Images are (N, C, H, W), (N, H, W, C) or grey (N, H, W); the channel axis is the one of axis 1 and axis 3 whose
size is 1 or 3 (the other two are the image); a shape where both or neither are 1 or 3 is refused. Pixels are
uint8 (scale 255) or floats (scale 1.0). Labels are integers 0..K-1, where K is the number of ``class_names``
or ``num_classes``, or without either the number of distinct labels (which must then be exactly 0..K-1).
"""

from __future__ import annotations

import json
import re

import numpy as np

from ..errors import DataFormatError
from .catalogue import CONSTANT_NOTE, CONSTANT_SHORT, INCEPTION_DECAY, DatasetInfo
from .dataset import hash_arrays

SPLITS = ("x_train", "y_train", "x_test", "y_test")
SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
USER_EPOCHS = 200  # default epoch budget on the user's data (MNIST's)


def as_numpy(value, what: str) -> np.ndarray:
    """A numpy array of ``value`` (a numpy array, a torch tensor, or anything numpy reads)."""
    import torch  # here: the config imports this module, and `shatter --help` loads no torch

    if isinstance(value, torch.Tensor):
        return value.detach().cpu().numpy()
    try:
        return np.asarray(value)
    except (TypeError, ValueError) as exc:
        raise DataFormatError(f"{what} is not an array ({exc}); give a numpy array or a torch tensor.") from None


def as_nchw(x: np.ndarray, what: str) -> np.ndarray:
    """Images as (N, C, H, W) with C 1 or 3, by the rule of the module docstring, as uint8 or float32."""
    if x.ndim == 3:
        x = x[:, None, :, :]
    elif x.ndim == 4:
        first, last = x.shape[1] in (1, 3), x.shape[3] in (1, 3)
        if first == last:
            raise DataFormatError(
                f"{what} has shape {list(x.shape)}, where the channel axis cannot be told: give images as "
                "N x C x H x W or N x H x W x C with C 1 or 3 (and an image side that is not 1 or 3), or N x H x W.")
        if last:
            x = x.transpose(0, 3, 1, 2)
    else:
        raise DataFormatError(f"{what} has shape {list(x.shape)}; give images as N x C x H x W, N x H x W x C or "
                              "N x H x W.")
    if len(x) == 0:
        raise DataFormatError(f"{what} holds no images; give at least one.")
    if x.dtype == np.uint8:  # a copy: the caller's arrays stay theirs (writable), the registered ones unchanged
        return np.array(x, order="C", copy=True)
    if x.dtype.kind != "f":
        raise DataFormatError(f"{what} holds {x.dtype} values; give uint8 pixels (0-255) or floats "
                              "(e.g. x.astype(numpy.uint8) for integers 0-255).")
    x = np.array(x, dtype=np.float32, order="C", copy=True)
    if not np.isfinite(x).all():
        raise DataFormatError(f"{what} holds NaN or infinite values; give finite pixel values.")
    return x


def as_labels(y: np.ndarray, n: int, what: str) -> np.ndarray:
    """Labels as int64 of shape (n,)."""
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim != 1 or y.dtype.kind not in "iu":
        raise DataFormatError(f"{what} holds {y.dtype} of shape {list(y.shape)}; give one integer label "
                              "(0..K-1) per image.")
    if len(y) != n:
        raise DataFormatError(f"{what} holds {len(y)} labels for {n} images; give one label per image.")
    return y.astype(np.int64)  # a copy


def checked_arrays(arrays: dict, class_names=None, where: str = "", num_classes=None) -> tuple[dict, tuple[str, ...]]:
    """The four arrays (``x_train``, ``y_train``, ``x_test``, ``y_test``) checked and in the form the readers
    give (images N x C x H x W, int64 labels, all read-only), and the class names (given, else "0".."K-1").
    ``where`` prefixes each array's name in a refusal (a file's path).

    K, the number of classes, is ``len(class_names)`` or ``num_classes`` where given; else the number of distinct
    labels in both splits, which must then be exactly 0..K-1: a label beyond them (one 57 among labels 0-9) would
    otherwise make K = 58 and the random labels of Section 2.1 fall on 48 classes with no example, so it is
    refused, naming the values (an explicit ``num_classes`` keeps such empty classes on purpose)."""
    out = {key: as_numpy(arrays[key], f"{where}{key}") for key in SPLITS}
    for split in ("train", "test"):
        out[f"x_{split}"] = as_nchw(out[f"x_{split}"], f"{where}x_{split}")
        out[f"y_{split}"] = as_labels(out[f"y_{split}"], len(out[f"x_{split}"]), f"{where}y_{split}")
    xtr, xte = out["x_train"], out["x_test"]
    if xtr.shape[1:] != xte.shape[1:]:
        raise DataFormatError(f"{where}x_train holds images of shape {list(xtr.shape[1:])} but {where}x_test "
                              f"{list(xte.shape[1:])}; give both splits images of one shape.")
    if xtr.dtype != xte.dtype:
        raise DataFormatError(f"{where}x_train holds {xtr.dtype} but {where}x_test {xte.dtype}; give both splits "
                              "one pixel type (uint8 0-255, or floats).")
    k = _explicit_classes(class_names, num_classes, where)
    if isinstance(k, tuple):
        class_names, k = k, len(k)
    for key in ("y_train", "y_test"):
        y = out[key]
        low, high = int(y.min()), int(y.max())
        if low < 0 or (k is not None and high >= k):
            bad = np.unique(y[(y < 0) | (y >= (k if k is not None else np.iinfo(np.int64).max))])
            bound = f"the {k} classes 0..{k - 1}" if k is not None else "0..K-1"
            raise DataFormatError(f"{where}{key} has {int(np.isin(y, bad).sum())} label(s) outside {bound} "
                                  f"(values {_values(bad)}); give labels 0..K-1"
                                  + (" or one class name per label." if class_names is not None else "."))
    if k is None:
        distinct = np.union1d(out["y_train"], out["y_test"])
        k = len(distinct)
        if k < 2:
            raise DataFormatError(f"{where}y_train and {where}y_test hold one class only; a randomization test "
                                  "needs at least two.")
        if int(distinct[-1]) >= k:
            bad = distinct[distinct >= k]
            count = sum(int(np.isin(out[key], bad).sum()) for key in ("y_train", "y_test"))
            raise DataFormatError(
                f"{where}y_train and {where}y_test hold {k} distinct labels, so K = {k} classes 0..{k - 1}, but "
                f"{count} label(s) lie outside them (values {_values(bad)}): as they are, {int(distinct[-1]) + 1 - k}"
                f" of {int(distinct[-1]) + 1} classes would have no example and chance would be "
                f"1/{int(distinct[-1]) + 1}; relabel the classes 0..{k - 1}, or give num_classes="
                f"{int(distinct[-1]) + 1} (an array 'num_classes' in the .npz, ArrayData(num_classes=...)) to keep "
                "the empty classes.")
    if class_names is None:
        class_names = tuple(str(i) for i in range(k))
    for key in SPLITS:
        out[key].setflags(write=False)
    return out, class_names


def _explicit_classes(class_names, num_classes, where: str) -> tuple[str, ...] | int | None:
    """The class names (a tuple) or the number of classes (an int) the data states, or None where it states
    neither; both stated must agree."""
    names = None
    if class_names is not None:
        array = as_numpy(class_names, f"{where}class_names")
        if array.ndim != 1 or len(array) < 2:
            raise DataFormatError(f"{where}class_names has shape {list(array.shape)}; give one name per class, "
                                  "at least two.")
        names = tuple(str(c) for c in array.tolist())
    if num_classes is None:
        return names
    array = as_numpy(num_classes, f"{where}num_classes")
    if array.size != 1 or array.dtype.kind not in "iu" or int(array.reshape(-1)[0]) < 2:
        raise DataFormatError(f"{where}num_classes is {array.tolist()!r}; give one integer of at least 2 (the "
                              "number of classes, labels 0..num_classes-1).")
    k = int(array.reshape(-1)[0])
    if names is not None and len(names) != k:
        raise DataFormatError(f"{where}class_names names {len(names)} classes but {where}num_classes is {k}; give "
                              "one of them, or make them agree.")
    return names if names is not None else k


def _values(values: np.ndarray, shown: int = 5) -> str:
    """Label values in a sentence: the first few, and how many more."""
    items = [str(int(v)) for v in values[:shown]]
    return ", ".join(items) + (f" and {len(values) - shown} more" if len(values) > shown else "")


def arrays_digest(arrays: dict, class_names: tuple[str, ...]) -> str:
    """BLAKE2b (32 hex digits) of the checked arrays and the class names: what a user data set is."""
    return hash_arrays([arrays[k] for k in SPLITS], json.dumps(list(class_names)).encode())


def user_info(name: str, title: str, arrays: dict, class_names: tuple[str, ...], *, label: str, source: str,
              digest: str, stamp=None) -> DatasetInfo:
    """The :class:`DatasetInfo` of a user data set: the paper's preprocessing (pixels / 255 for uint8, as they
    are for floats; no crop; per-image whitening), a constant learning rate, the arrays in ``extra``."""
    x = arrays["x_train"]
    return DatasetInfo(
        name=name, title=title, shape=tuple(int(s) for s in x.shape[1:]), class_names=class_names,
        n_train=len(x), n_test=len(arrays["x_test"]), kind="arrays",
        pixel_scale=255.0 if x.dtype == np.uint8 else 1.0, crop=None, whitening="per-image", lr_decay=1.0,
        lr_decay_by_model=INCEPTION_DECAY, epochs=USER_EPOCHS, schedule_note=CONSTANT_NOTE,
        schedule_short=CONSTANT_SHORT,
        extra={"arrays": arrays, "digest": digest, "label": label, "source": source, "stamp": stamp},
    )


class ArrayData:
    """The researcher's own data set, as arrays: accepted wherever a data set name is
    (``shattering.run(dataset=ArrayData(...))``, ``RunConfig(dataset=...)``, ``shattering.reproduce(...,
    dataset=...)``).

    ``x_train``/``x_test``: numpy arrays or torch tensors of images, N x C x H x W, N x H x W x C or grey
    N x H x W (the channel axis is whichever of axis 1 and axis 3 has size 1 or 3; a shape where both or neither
    do is refused); uint8 (pixels 0-255, divided by 255) or floats (used as they are). ``y_train``/``y_test``:
    integer labels 0..K-1 (K: ``len(class_names)``, else ``num_classes``, else the number of distinct labels,
    which must then be exactly 0..K-1). ``name``: letters, digits, ``.``, ``_``, ``-``. The data set is registered as
    ``<name>-<first 8 hex digits of the arrays' digest>`` (:attr:`dataset_name`), so the same arrays give the same
    run ids and different arrays never share a record. The paper's preprocessing applies: no crop, per-image
    whitening, unless the run says otherwise.

    The arrays live in this process only: the Ray executor cannot ship them (save an .npz and pass its path).
    """

    def __init__(self, x_train, y_train, x_test, y_test, name: str = "arrays",
                 class_names: list[str] | tuple[str, ...] | None = None, num_classes: int | None = None):
        if not isinstance(name, str) or not SAFE_NAME.fullmatch(name):
            raise DataFormatError(f"ArrayData's name must be letters, digits, '.', '_' or '-' (it names the run "
                                  f"folders); got {name!r}.")
        given = {"x_train": x_train, "y_train": y_train, "x_test": x_test, "y_test": y_test}
        self.arrays, self.class_names = checked_arrays(given, class_names, num_classes=num_classes)
        self.name = name
        self.digest = arrays_digest(self.arrays, self.class_names)

    @property
    def dataset_name(self) -> str:
        """The name the data set is registered under: ``<name>-<digest prefix>``."""
        return f"{self.name}-{self.digest[:8]}"

    def info(self) -> DatasetInfo:
        """Its :class:`DatasetInfo` (kind ``arrays``)."""
        return user_info(self.dataset_name, f"{self.name} (arrays in memory)", self.arrays, self.class_names,
                         label=self.dataset_name, source="arrays in memory (shattering.ArrayData)",
                         digest=self.digest)

    def __repr__(self) -> str:
        x = self.arrays["x_train"]
        return (f"ArrayData({self.dataset_name!r}, {len(x)} train / {len(self.arrays['x_test'])} test, "
                f"shape {list(x.shape[1:])}, {len(self.class_names)} classes)")
