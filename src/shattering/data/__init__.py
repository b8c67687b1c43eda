"""Data sets by name, their official file formats, the paper's preprocessing (Section 2.1, Appendix A)."""

from .dataset import ImageData, load_dataset, prepare, stratified_subset
from .registry import DATASETS, DatasetInfo, RawData, cache_dir, dataset_info, fetch, list_local, load_raw

__all__ = [
    "DATASETS", "DatasetInfo", "ImageData", "RawData", "cache_dir", "dataset_info", "fetch", "list_local",
    "load_dataset", "load_raw", "prepare", "stratified_subset",
]
