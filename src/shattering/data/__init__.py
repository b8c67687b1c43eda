"""Data sets by name, their official file formats, the paper's preprocessing (Section 2.1, Appendix A).

- ``catalogue.py``: :class:`DatasetInfo` per data set, :func:`register_dataset`, :func:`dataset_info`;
- ``location.py``: where the files are found (:func:`cache_dir`, :func:`locate`, :func:`list_local`) and fetched;
- ``readers.py``: :func:`load_raw`, one reader per kind of files; ``formats.py``: the official file formats;
- ``dataset.py``: :func:`load_dataset`, the prepared arrays a run trains on (``preprocess.py``: the paper's steps);
- ``image_folder.py`` and ``folder_data.py``: image folders (ImageNet) streamed from disk;
- ``arrays.py`` (:class:`ArrayData`) and ``user_data.py``: the user's own data, by arrays, .npz file or image
  folder, registered in the catalogue under a name that carries a digest of the arrays.
"""

from .arrays import ArrayData
from .catalogue import DATASETS, DatasetInfo, dataset_info, dataset_names, register_dataset
from .dataset import ImageData, load_dataset, prepare, stratified_subset
from .location import cache_dir, fetch, list_local
from .readers import RawData, load_raw
from .user_data import dataset_key, dataset_label

__all__ = [
    "DATASETS", "ArrayData", "DatasetInfo", "ImageData", "RawData", "cache_dir", "dataset_info", "dataset_key",
    "dataset_label", "dataset_names", "fetch", "list_local", "load_dataset", "load_raw", "prepare",
    "register_dataset", "stratified_subset",
]
