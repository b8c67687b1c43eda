"""Which examples a run's network memorizes: K networks of the run's configuration, each trained on a seeded random
subset of its training set (:mod:`shattering.train.subsets`), and the per-example scores they give
(:mod:`shattering.influence`): Feldman and Zhang's memorization and influence (NeurIPS 2020) and Jiang et al.'s
consistency score (ICML 2021). In a partially corrupted run the examples whose label was corrupted are known, so
the scores can be checked against them.

A study is kept in the run's record, ``RUN/memorization/subsets-K{networks}-f{fraction}-s{seed}/``: its settings
(``study.json``), the masks (``masks.npy``: masks[k, i], network k trained on example i) and one file per group of
networks (``group-GGG.npz``), each written whole (a temporary file renamed) as its group ends. Asking for the same
study again reads it back; a study stopped part way trains only the groups it lacks; a group file that cannot be
read back whole is trained again, and the study's facts say so. The masks and seeds depend on the study's
settings only, so a study trained in groups of any size gives the same networks.
"""

from __future__ import annotations

import io
import sys
import time
import zipfile
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np

from ..config import RunConfig
from ..data.dataset import ImageData
from ..errors import ConfigError, RecordError
from ..files import atomic_write_bytes, atomic_write_json, read_json
from ..influence import FRACTION, c_score, influence, memorization, subset_masks
from ..models import model_info
from ..optimizers import optimizer_info
from ..runs.record import RunRecord
from ..train.data import make_data, streamed
from ..train.subsets import SubsetResult, check_subset_config, member_seeds, train_subsets
from ..validation import check_float, check_int

NETWORKS = 100  # K: networks per study (Feldman and Zhang use 2,000 on CIFAR; the standard error shrinks as 1/sqrt K)
GROUP = 10  # networks trained together (one pack) and kept in one file: the unit of resumption; 10 measured
# faster per network than 50 (bench/RESULTS.md, part memorization-scores)
NEIGHBOURS = 10  # the typicality measure's nearest neighbours
STUDY_DIR = "memorization"
_ARRAYS = ("train_correct", "train_prob", "test_correct", "test_prob", "fit_epoch", "epochs", "diverged")


def packs(cfg: RunConfig) -> bool:
    """Whether the subset networks of ``cfg`` train as one packed model: a packable MLP (no model argument, no
    dropout) with an optimizer whose state is per element; members share the run's data whatever its
    corruption."""
    r = cfg.resolved()
    return (model_info(r.model).packable and not r.model_args and r.dropout == 0
            and optimizer_info(r.optimizer).packable)


def study_dir(run_dir: str | Path, networks: int, fraction: float, seed: int) -> Path:
    """Where the study of these settings is kept in the run's record."""
    return Path(run_dir) / STUDY_DIR / f"subsets-K{networks}-f{fraction:g}-s{seed}"


@dataclass
class SubsetStudy:
    """K networks on subsets of one run's training set and their per-example scores.

    ``masks`` (K, N) bool; ``result`` the networks' :class:`~shattering.train.subsets.SubsetResult`; ``data``
    the run's data (its ``y_train`` the labels the networks were trained on, the run's, possibly corrupted;
    ``y_train_original`` the data set's; ``train_changed`` where the run changed a label or an image); ``facts``:
    settings, seconds, groups trained and read back, groups trained again (damaged), networks that fit their
    subset and that diverged."""

    run_dir: Path
    config: RunConfig
    masks: np.ndarray
    result: SubsetResult
    data: ImageData
    facts: dict = field(default_factory=dict)

    @property
    def labels(self) -> np.ndarray:
        return np.asarray(self.data.y_train)

    @property
    def original(self) -> np.ndarray:
        return np.asarray(self.data.y_train_original)

    @property
    def corrupted(self) -> np.ndarray:
        return np.asarray(self.data.train_changed, dtype=bool)

    @cached_property
    def neighbours_agree(self) -> np.ndarray:
        """The share of each example's :data:`NEIGHBOURS` nearest training images (Euclidean, on the preprocessed
        pixels) whose original label is its own (:func:`neighbour_agreement`): how typical it is, measured
        without any network."""
        return neighbour_agreement(self.data.x_train, self.original)

    @cached_property
    def memorization(self):
        """Feldman and Zhang's estimate per training example (:func:`shattering.influence.memorization`), from the
        0/1 correctness of the networks that trained on it and of those that did not."""
        return memorization(self.masks, self.result.train_correct)

    @cached_property
    def c_score(self):
        """Jiang et al.'s consistency score per training example (:func:`shattering.influence.c_score`)."""
        return c_score(self.masks, self.result.train_correct)

    def influence(self):
        """Feldman and Zhang's influence of each training example on each test example, (N, M)
        (:func:`shattering.influence.influence`)."""
        return influence(self.masks, self.result.test_correct)

    def table(self):
        """One row per training example (a pandas DataFrame): ``example`` (its index in the run's training set),
        ``label`` (trained on), ``original_label``, ``corrupted``, ``memorization`` and its ``memorization_se``,
        ``p_in``, ``p_out``, ``n_in``, ``n_out`` (networks that trained on it and that did not), ``c_score`` and
        its ``c_score_se``, ``neighbours_agree``."""
        import pandas as pd

        mem, c = self.memorization, self.c_score
        return pd.DataFrame({"example": np.arange(len(self.labels)), "label": self.labels,
                             "original_label": self.original, "corrupted": self.corrupted,
                             "memorization": mem.mem, "memorization_se": mem.se, "p_in": mem.p_in,
                             "p_out": mem.p_out, "n_in": mem.n_in, "n_out": mem.n_out, "c_score": c.c,
                             "c_score_se": c.se, "neighbours_agree": self.neighbours_agree})

    @property
    def test_accuracy(self) -> np.ndarray:
        """Each network's accuracy on the test set (true labels), (K,)."""
        return self.result.test_correct.mean(axis=1)


def read_run_config(run_dir: str | Path) -> RunConfig:
    """The (resolved) config written in a run's record; a folder that holds none is refused."""
    record = RunRecord(Path(run_dir).expanduser())
    written = record.read_config()
    if written is None or not isinstance(written.get("config"), dict):
        raise RecordError(f"{record.dir} is no run record (it has no readable config.json); pass the folder of one "
                          "run.")
    return RunConfig.from_dict(written["config"]).resolved()


def subset_study(run_dir: str | Path, *, networks: int = NETWORKS, fraction: float = FRACTION, seed: int = 0,
                 group: int = GROUP, progress: bool = False, train: bool = True) -> SubsetStudy:
    """The study of ``networks`` networks of the run in ``run_dir``'s configuration, each on a random subset of
    ``fraction`` of its training set (the subsets drawn by :func:`shattering.influence.subset_masks` from
    ``seed``): read back from the run's record where kept, else trained (``group`` networks at a time, each group
    kept as it ends) and kept. ``progress``: a line on standard error per group. ``train=False``: read back only;
    a study not kept whole is refused."""
    of = "subset_study"
    networks = check_int(networks, "networks", minimum=2, of=of)
    fraction = check_float(fraction, "fraction", low=0.0, high=1.0, low_open=True, high_open=True, of=of)
    seed = check_int(seed, "seed", minimum=0, of=of)
    group = check_int(group, "group", minimum=1, of=of)
    run_dir = Path(run_dir).expanduser()
    cfg = read_run_config(run_dir)
    if streamed(cfg):
        raise ConfigError(f"{run_dir}: subset training needs a data set held in memory; {cfg.dataset} is streamed "
                          "from disk (pass a run on another data set).")
    check_subset_config(cfg)
    start = time.perf_counter()
    data = make_data(cfg)
    n = len(data.y_train)
    masks = subset_masks(n, networks, fraction, seed)
    seeds = member_seeds(cfg.seed, seed, networks)
    folder = study_dir(run_dir, networks, fraction, seed)
    folder.mkdir(parents=True, exist_ok=True)
    settings = {"networks": networks, "fraction": fraction, "seed": seed, "run_id": cfg.run_id(),
                "data": data.fingerprint, "examples": n, "test_examples": len(data.y_test)}
    written = read_json(folder / "study.json")
    if written is not None and written.get("settings") != settings:
        raise RecordError(f"{folder} holds a study of other settings or data ({written.get('settings')}); move it "
                          "aside or delete it to train this one.")
    if written is None:
        if not train:
            raise RecordError(f"{folder} holds no study; ask for it with training allowed.")
        atomic_write_json(folder / "study.json", {"settings": settings, "group": group, "packed": packs(cfg)})
        buffer = io.BytesIO()
        np.save(buffer, masks)
        atomic_write_bytes(folder / "masks.npy", buffer.getvalue())
    else:
        group = written.get("group") if isinstance(written.get("group"), int) and written["group"] > 0 else group
    parts, trained, damaged = [], [], []
    for g, lo in enumerate(range(0, networks, group)):
        members = np.arange(lo, min(lo + group, networks))
        path = folder / f"group-{g:03d}.npz"
        part, problem = _read_group(path, members, n, len(data.y_test)) if path.is_file() else (None, None)
        if part is None:
            if problem:
                damaged.append(f"{path.name} ({problem})")
            if not train:
                raise RecordError(f"{folder} does not hold {path.name} whole ({problem or 'missing'}); ask for the "
                                  "study with training allowed to complete it.")
            t0 = time.perf_counter()
            result = train_subsets(cfg, data, masks[members], [seeds[k] for k in members], packed=packs(cfg))
            part = {name: getattr(result, name) for name in _ARRAYS} | {"seconds": result.seconds}
            _write_group(path, members, part)
            trained.append(g)
            if progress:
                print(f"subset networks {lo + 1}-{members[-1] + 1} of {networks}: trained in "
                      f"{time.perf_counter() - t0:.1f} s", file=sys.stderr, flush=True)
        parts.append(part)
    joined = {name: np.concatenate([p[name] for p in parts]) for name in _ARRAYS}
    seconds = float(sum(float(p["seconds"]) for p in parts))
    result = SubsetResult(**joined, seconds=seconds)
    groups = len(parts)
    facts = settings | {"group": group, "groups": groups, "trained_now": trained, "damaged": damaged,
                        "read_back": groups - len(trained), "training_seconds": seconds,
                        "seconds": time.perf_counter() - start, "fit": int((result.fit_epoch > 0).sum()),
                        "diverged": int(result.diverged.sum()), "packed": packs(cfg), "neighbours": NEIGHBOURS,
                        "folder": str(folder)}
    return SubsetStudy(run_dir, cfg, masks, result, data, facts)


def _write_group(path: Path, members: np.ndarray, part: dict) -> None:
    buffer = io.BytesIO()
    np.savez(buffer, members=members, **part)
    atomic_write_bytes(path, buffer.getvalue())


def _read_group(path: Path, members: np.ndarray, n: int, m: int) -> tuple[dict | None, str | None]:
    """The arrays of a kept group, or (None, why) where the file is not the whole group it should be."""
    shapes = {"train_correct": (n,), "train_prob": (n,), "test_correct": (m,), "test_prob": (m,), "fit_epoch": (),
              "epochs": (), "diverged": ()}
    try:
        with np.load(path) as found:
            arrays = {key: found[key] for key in (*_ARRAYS, "members", "seconds")}
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as exc:
        return None, f"unreadable: {type(exc).__name__}"
    if not np.array_equal(arrays["members"], members):
        return None, "holds other networks"
    for key, shape in shapes.items():
        if arrays[key].shape != (len(members), *shape):
            return None, f"{key} of shape {arrays[key].shape}"
    return arrays, None


def stored_study(run_dir: str | Path) -> SubsetStudy | None:
    """The complete study with the most networks kept in the run's record (read back, nothing trained), or None:
    what the claims of the ``memorization-scores`` artefact read (its renderer trained them just before)."""
    base = Path(run_dir) / STUDY_DIR
    best = None
    for folder in sorted(base.glob("subsets-K*")) if base.is_dir() else []:
        settings = (read_json(folder / "study.json") or {}).get("settings") or {}
        k = settings.get("networks")
        groups = sorted(folder.glob("group-*.npz"))
        if isinstance(k, int) and groups and (best is None or k > best[0]):
            best = (k, settings)
    if best is None:
        return None
    k, s = best
    try:
        return subset_study(run_dir, networks=k, fraction=s["fraction"], seed=s["seed"], train=False)
    except (RecordError, ConfigError, KeyError):
        return None


def neighbour_agreement(x: np.ndarray, labels: np.ndarray, k: int = NEIGHBOURS, block: int = 1024) -> np.ndarray:
    """For each example, the share of its ``k`` nearest other examples (Euclidean distance between the flattened
    images) whose label equals its own: 1 where its neighbourhood is of its class (typical), near 0 where it looks
    like another class (atypical, or mislabeled). Computed in row blocks of ``block`` (memory ``block`` x N)."""
    import torch

    flat = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32).reshape(len(x), -1))
    y = torch.from_numpy(np.asarray(labels, dtype=np.int64))
    k = min(k, len(x) - 1)
    out = np.empty(len(x))
    for s in range(0, len(x), block):
        d = torch.cdist(flat[s:s + block], flat)
        d[torch.arange(d.shape[0]), torch.arange(s, s + d.shape[0])] = float("inf")  # not its own neighbour
        nearest = d.topk(k, largest=False).indices
        out[s:s + block] = (y[nearest] == y[s:s + block, None]).double().mean(dim=1).numpy()
    return out
