"""Subset training (shattering.train.subsets) and the memorization-scores study kept in a run's record
(shattering.experiments.memorization_scores): packed members equal networks trained one after another, a member
sees only its subset, fit means fit, and a study resumes, refuses and reports as it says."""

from __future__ import annotations

import numpy as np
import pytest

from shattering.config import RunConfig
from shattering.errors import ConfigError, RecordError
from shattering.experiments import memorization_scores as ms
from shattering.influence import subset_masks
from shattering.train.data import make_data
from shattering.train.subsets import member_seeds, train_subsets

BASE = {"dataset": "digits", "model": "mlp-1x512", "train_size": 120, "test_size": 60, "precision": "fp32",
        "batch_size": 32, "lr": 0.01}


def _cfg(**kw) -> RunConfig:
    return RunConfig(**{**BASE, **kw}).resolved()


def test_packed_members_equal_networks_trained_one_after_another():
    cfg = _cfg(epochs=3, until="epochs")
    data = make_data(cfg)
    masks = subset_masks(len(data.y_train), 3, 0.7, seed=1)
    seeds = member_seeds(cfg.seed, 0, 3)
    packed = train_subsets(cfg, data, masks, seeds, packed=True)
    alone = train_subsets(cfg, data, masks, seeds, packed=False)
    np.testing.assert_allclose(packed.train_prob, alone.train_prob, atol=2e-5)
    np.testing.assert_allclose(packed.test_prob, alone.test_prob, atol=2e-5)
    assert (packed.epochs == 3).all() and (alone.epochs == 3).all()
    # different seeds and subsets: different networks
    assert not np.allclose(packed.train_prob[0], packed.train_prob[1])


def test_a_member_sees_only_its_subset():
    """Changing the labels of the examples outside member 0's subset changes nothing of member 0."""
    cfg = _cfg(epochs=2, until="epochs")
    data = make_data(cfg)
    masks = subset_masks(len(data.y_train), 2, 0.5, seed=3)
    seeds = member_seeds(0, 0, 2)
    first = train_subsets(cfg, data, masks, seeds, packed=True)
    outside = ~masks[0]
    data.y_train = data.y_train.copy()
    data.y_train[outside] = (data.y_train[outside] + 1) % 10
    second = train_subsets(cfg, data, masks, seeds, packed=True)
    np.testing.assert_array_equal(first.test_prob[0], second.test_prob[0])
    assert not np.array_equal(first.test_prob[1], second.test_prob[1])  # member 1 saw some of those labels


def test_fit_members_classify_their_whole_subset():
    cfg = _cfg(epochs=60, until="fit", lr=0.05)
    data = make_data(cfg)
    masks = subset_masks(len(data.y_train), 3, 0.7, seed=0)
    result = train_subsets(cfg, data, masks, member_seeds(0, 0, 3), packed=True)
    assert (result.fit_epoch > 0).all(), result.fit_epoch
    for k in range(3):
        assert result.train_correct[k, masks[k]].all()
        assert result.epochs[k] == result.fit_epoch[k]  # stopped when fit
        assert result.train_prob[k, masks[k]].min() > 0.0


def test_bad_input_is_refused_in_one_sentence():
    cfg = _cfg(epochs=1)
    data = make_data(cfg)
    masks = subset_masks(len(data.y_train), 2, 0.7)
    with pytest.raises(ConfigError, match="random_crop"):
        train_subsets(_cfg(epochs=1, random_crop=True), data, masks, [1, 2], packed=True)
    uneven = masks.copy()
    uneven[0, np.flatnonzero(~uneven[0])[0]] = True
    with pytest.raises(ConfigError, match="same, non-zero number"):
        train_subsets(cfg, data, uneven, [1, 2], packed=True)
    with pytest.raises(ConfigError, match="one seed per row"):
        train_subsets(cfg, data, masks, [1], packed=True)


def test_member_seeds_are_distinct_and_reproducible():
    a = member_seeds(0, 0, 50)
    assert len(set(a)) == 50 and a == member_seeds(0, 0, 50) and a[:10] == member_seeds(0, 0, 10)
    assert member_seeds(1, 0, 5) != a[:5] and member_seeds(0, 1, 5) != a[:5]
    assert all(0 <= s < 2**63 for s in a)


@pytest.fixture
def finished_run(tmp_path):
    from shattering.runs import run

    result = run(**{**BASE, "corruption": "partial-labels", "p": 0.3, "epochs": 2, "until": "epochs"},
                 out=str(tmp_path / "runs"))
    return result.run_dir


def test_study_is_kept_read_back_and_resumed(finished_run, monkeypatch):
    study = ms.subset_study(finished_run, networks=5, group=2)
    assert study.facts["trained_now"] == [0, 1, 2] and study.facts["read_back"] == 0
    table = study.table()
    assert list(table["corrupted"]) == list(study.data.train_changed.astype(bool))
    assert study.corrupted.sum() > 0 and (table["label"] != table["original_label"]).sum() > 0
    assert ((table["n_in"] + table["n_out"]) == 5).all()
    np.testing.assert_allclose(table["memorization"], table["p_in"] - table["p_out"], equal_nan=True)
    np.testing.assert_allclose(table["c_score"], table["p_out"], equal_nan=True)

    again = ms.subset_study(finished_run, networks=5, group=3)  # read back, in the groups it was kept in
    assert again.facts["trained_now"] == [] and again.facts["read_back"] == 3
    np.testing.assert_array_equal(again.result.train_correct, study.result.train_correct)

    folder = ms.study_dir(finished_run, 5, 0.7, 0)
    (folder / "group-001.npz").unlink()  # stopped before the second group was kept
    (folder / "group-002.npz").write_bytes(b"PK\x03\x04 half a file")  # a damaged file
    assert ms.stored_study(finished_run) is None  # the claims read only a whole study
    resumed = ms.subset_study(finished_run, networks=5)
    assert resumed.facts["trained_now"] == [1, 2]
    assert resumed.facts["damaged"] == ["group-002.npz (unreadable: BadZipFile)"]
    np.testing.assert_allclose(resumed.result.train_prob, study.result.train_prob, atol=1e-6)
    assert ms.stored_study(finished_run).facts["read_back"] == 3


def test_study_refuses_other_settings_and_non_runs(finished_run, tmp_path):
    folder = ms.study_dir(finished_run, 4, 0.7, 0)
    folder.mkdir(parents=True)
    (folder / "study.json").write_text('{"settings": {"networks": 4, "data": "other"}}')
    with pytest.raises(RecordError, match="other settings or data.*move it aside or delete it"):
        ms.subset_study(finished_run, networks=4)
    with pytest.raises(RecordError, match="no run record"):
        ms.subset_study(tmp_path, networks=4)
    with pytest.raises(ConfigError, match="networks"):
        ms.subset_study(finished_run, networks=1)


def test_neighbour_agreement_against_a_direct_loop():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 1, 3, 3)).astype(np.float32)
    y = rng.integers(0, 3, 40)
    got = ms.neighbour_agreement(x, y, k=4, block=7)
    flat = x.reshape(40, -1).astype(np.float64)
    for i in range(40):
        d = np.linalg.norm(flat - flat[i], axis=1)
        d[i] = np.inf
        assert got[i] == pytest.approx(np.mean(y[np.argsort(d)[:4]] == y[i]))


def test_which_configurations_pack():
    assert ms.packs(RunConfig(model="mlp-1x512"))
    assert ms.packs(RunConfig(model="mlp-3x512", corruption="random-pixels"))  # members share the run's images
    assert not ms.packs(RunConfig(model="mlp-1x512", dropout=0.5))
    assert not ms.packs(RunConfig(model="alexnet-small"))
