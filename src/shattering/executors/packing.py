"""Packing, a scheduling decision: which runs of a sweep train together as one packed model
(:mod:`shattering.train.packed`: K MLPs of Section 2.1's experiments, exactly K independent SGD runs), and
running such a pack with its records (reuse a summary, lock, resume, write each summary as a member ends).

The rule (``pack=None``): MLPs are packed (up to ``MAX_PACK`` runs); the convolutional models run one after
another -- on a 2-core CPU one run already saturates the cores, and grouped convolutions measured slower
than separate runs (bench/RESULTS.md; PyTorch issue #73764 on CUDA). ``pack=1`` turns packing off and
``pack=K`` caps a pack at K runs. Whether a model can be packed at all is its catalogue entry's
(:attr:`shattering.models.catalogue.ModelInfo.packable`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence

import numpy as np

from ..config import RunConfig
from ..corruptions import LABEL_CORRUPTIONS
from ..errors import RunLockedError, ShatteringError
from ..measures import with_measures
from ..models import model_info
from ..optimizers import optimizer_info
from ..runs import RunRecord
from ..runs.lifecycle import CoreLease
from ..train.data import make_data, streamed
from ..train.packed import Member, open_member, train_pack
from .outcome import Outcome, run_one

MAX_PACK = 16
# Fields that may differ inside a pack (everything else must be equal).
_FREE = ("seed", "data_seed", "corruption", "p", "exclude_true_class", "corrupt_test_labels")


def pack_key(cfg: RunConfig) -> tuple | None:
    """Runs with equal keys can share a pack; None when ``cfg`` cannot be packed."""
    r = cfg.resolved()
    if (not model_info(r.model).packable or r.corruption not in LABEL_CORRUPTIONS or r.dropout > 0 or r.random_crop
            or r.flip_rotate or streamed(r) or not optimizer_info(r.optimizer).packable  # streamed data
            or r.model_args):  # (ImageNet) has no tensors to share; an optimizer whose state is not per element, no
        return None  # stack; a model argument (the MLP's activation) another network than the packed ReLU MLP
    fields = {k: v for k, v in r.to_dict().items() if k not in _FREE}  # the optimizer and its settings included
    if r.train_size or r.test_size:  # the data seed picks the subset: members must share it
        fields["data_seed"] = r.data_seed
    return tuple(sorted(fields.items()))


def packed_groups(configs: Sequence[RunConfig], pack: int | None = None) -> list[list[RunConfig]]:
    """Split ``configs`` into packs (lists of configs, in order of first appearance).

    Where runs that could share a pack include several of one seed (a corruption sweep over seeds: Fig. 1b/1c),
    each seed gets packs of its own: members of one seed draw the same batches, so the pack's first layer is one
    wide matrix product (:func:`shattering.train.packed.wide_first_layer`) instead of one per member."""
    limit = MAX_PACK if pack is None else int(pack)
    keys = [pack_key(cfg) if limit > 1 else None for cfg in configs]
    per_seed: dict[tuple, int] = {}
    for cfg, key in zip(configs, keys, strict=True):
        if key is not None:
            per_seed[(key, cfg.seed)] = per_seed.get((key, cfg.seed), 0) + 1
    by_seed = {key for (key, _), n in per_seed.items() if n > 1}
    groups: list[list[RunConfig]] = []
    open_group: dict[tuple, list[RunConfig]] = {}
    for cfg, key in zip(configs, keys, strict=True):
        if key is None:
            groups.append([cfg])
            continue
        if key in by_seed:
            key = (key, cfg.seed)
        group = open_group.get(key)
        if group is None or len(group) >= limit:
            group = []
            open_group[key] = group
            groups.append(group)
        group.append(cfg)
    return groups


def run_packed_group(configs: Sequence[RunConfig], keep_checkpoints: str = "last",
                     progress: bool = False, execution: dict | None = None) -> Iterator[Outcome]:
    """Train the runs of ``configs`` together; yield one :class:`~shattering.executors.outcome.Outcome` per
    run, each as soon as the run ends (its summary written, its checkpoints pruned to ``keep_checkpoints``).
    A run another process is training is ``locked`` (not trained here); one whose data fails to load removes
    the record folder this call created for it. ``execution``: how the pack ran (threads, cores, workers), put
    in every member's summary."""
    pending, repaired = [], {}
    for cfg in (c.resolved() for c in configs):
        record = RunRecord(cfg.run_dir())
        summary = record.read_summary()
        if summary is not None:
            yield Outcome(cfg, record.dir, summary=summary, skipped=True)
            continue
        try:
            repaired[record.dir] = record.set_aside_if_damaged()  # trained again from its config
        except ShatteringError as exc:  # another process holds it, or it cannot be moved
            yield Outcome(cfg, record.dir, error=str(exc), locked=isinstance(exc, RunLockedError))
            continue
        pending.append((cfg, record))
    if not pending:
        return
    with contextlib.ExitStack() as locks:
        members: list[Member] = []
        records: dict[int, RunRecord] = {}  # id(member) -> its record, where its summary goes
        alone = []
        x_ref = None
        for cfg, record in pending:
            created = not record.dir.exists()
            try:
                locks.enter_context(record.lock())
            except RunLockedError as exc:
                yield Outcome(cfg, record.dir, error=str(exc), locked=True)
                continue
            except ShatteringError as exc:
                yield Outcome(cfg, record.dir, error=str(exc))
                continue
            summary = record.read_summary()  # another process may have finished it while we looked
            if summary is not None:
                yield Outcome(cfg, record.dir, summary=summary, skipped=True)
                continue
            try:
                data = make_data(cfg)
            except ShatteringError as exc:
                if created:  # a run that never started leaves no folder behind
                    record.discard_unstarted()
                yield Outcome(cfg, record.dir, error=str(exc))
                continue
            if x_ref is None:
                x_ref = (data.x_train, data.x_test)
            elif not (np.array_equal(x_ref[0], data.x_train) and np.array_equal(x_ref[1], data.x_test)):
                alone.append(cfg)  # other images: cannot share the inputs of the pack
                continue
            else:  # the same images: keep one copy for the whole pack (each member keeps its labels)
                data.x_train, data.x_test = x_ref
            member = open_member(cfg, data, record, images=members[0] if members else None)
            members.append(member)
            records[id(member)] = record
        by_epoch: dict[int, list[Member]] = {}
        for m in members:
            by_epoch.setdefault(m.book.epoch, []).append(m)
        for group in by_epoch.values():
            for member, summary, seconds in train_pack(group, progress, hooks=[CoreLease()]):
                record = records[id(member)]
                # the member's own model holds its trained weights (saved for its checkpoint as the pack ended it)
                summary = with_measures(summary, member.cfg, member.model, member.book.data,
                                        member.tensors["x_train"], member.tensors["y_train"])
                if execution is not None:
                    summary = {**summary, "execution": execution}
                record.write_summary(summary)
                record.prune_checkpoints(keep_checkpoints)
                moved, damage = repaired.get(record.dir, (None, []))
                yield Outcome(member.cfg, record.dir, summary=summary, seconds=seconds, moved_aside=moved,
                              damage=tuple(damage))
    for cfg in alone:
        yield run_one(cfg, progress, keep_checkpoints=keep_checkpoints)
