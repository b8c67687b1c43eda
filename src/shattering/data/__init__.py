"""Data sets by name, their official file formats, the paper's preprocessing (Section 2.1, Appendix A).

- ``catalogue.py``: :class:`DatasetInfo` per data set, :func:`register_dataset`, :func:`dataset_info`;
- ``location.py``: where the files are found (:func:`cache_dir`, :func:`locate`, :func:`list_local`) and fetched;
- ``readers.py``: :func:`load_raw`, one reader per kind of files; ``formats.py``: the official file formats;
- ``dataset.py``: :func:`load_dataset`, the prepared arrays a run trains on (``preprocess.py``: the paper's steps);
- ``image_folder.py`` and ``folder_data.py``: image folders (ImageNet) streamed from disk;
- ``arrays.py`` (:class:`ArrayData`) and ``user_data.py``: the user's own data, by arrays, .npz file or image
  folder, registered in the catalogue under a name that carries a digest of the arrays.
"""

from typing import TYPE_CHECKING

from .._lazy import lazy_exports

# each name imported when first used (shattering._lazy): the catalogue loads no torch, a data set scikit-learn
__all__ = lazy_exports(__name__, {
    ".arrays": ("ArrayData",),
    ".catalogue": ("DATASETS", "DatasetInfo", "dataset_info", "dataset_names", "register_dataset"),
    ".dataset": ("ImageData", "load_dataset", "prepare", "stratified_subset"),
    ".location": ("cache_dir", "fetch", "list_local"),
    ".readers": ("RawData", "load_raw"),
    ".user_data": ("dataset_key", "dataset_label"),
})

if TYPE_CHECKING:
    from .arrays import ArrayData as ArrayData
    from .catalogue import DATASETS as DATASETS
    from .catalogue import DatasetInfo as DatasetInfo
    from .catalogue import dataset_info as dataset_info
    from .catalogue import dataset_names as dataset_names
    from .catalogue import register_dataset as register_dataset
    from .dataset import ImageData as ImageData
    from .dataset import load_dataset as load_dataset
    from .dataset import prepare as prepare
    from .dataset import stratified_subset as stratified_subset
    from .location import cache_dir as cache_dir
    from .location import fetch as fetch
    from .location import list_local as list_local
    from .readers import RawData as RawData
    from .readers import load_raw as load_raw
    from .user_data import dataset_key as dataset_key
    from .user_data import dataset_label as dataset_label
