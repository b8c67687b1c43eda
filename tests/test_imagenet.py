"""Tests for the ImageNet path (`shattering/data/image_folder.py`, `shattering/data/folder_data.py`,
`shattering.corruptions.randomize_folder`, `shattering/train/stream.py`, Inception V3, the `table2`/`fig2a`
presets) on a tiny image folder the tests write with Pillow."""

from __future__ import annotations

import contextlib
import io
import json
import os
import sys

import numpy as np
import pytest
import torch

import shattering
from shattering.config import RunConfig
from shattering.data.folder_data import LABELS_FILE
from shattering.data.image_folder import decode, eval_box, list_image_folder, resized_crop_box
from shattering.errors import ConfigError, DataFormatError, DataNotFoundError
from shattering.runs import RunRecord

PIL = pytest.importorskip("PIL", reason="Pillow is not installed (pip install 'shattering[imagenet]')")
from PIL import Image  # noqa: E402

CLASSES = ("ant", "bee", "cat")
TIMING = {"seconds", "eval_seconds", "epoch_seconds"}


def write_image_folder(root, n_train: int = 5, n_val: int = 2, seed: int = 0):
    """``root/train/<class>/*`` and ``root/val/<class>/*``: JPEG and PNG of several sizes; each class its own
    mean colour, so that the classes can be learnt."""
    rng = np.random.default_rng(seed)
    for split, n in (("train", n_train), ("val", n_val)):
        for k, c in enumerate(CLASSES):
            folder = root / split / c
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(n):
                h, w = 18 + 3 * (i % 3), 20 + 2 * (i % 2)
                base = np.zeros((h, w, 3)) + 60 + 70 * np.eye(3)[k] * 2
                img = np.clip(base + rng.normal(0, 25, (h, w, 3)), 0, 255).astype(np.uint8)
                Image.fromarray(img).save(folder / (f"{c}{i}.JPEG" if i % 2 else f"{c}{i}.png"))
    return root


@pytest.fixture
def folder(tmp_path):
    return write_image_folder(tmp_path / "imagenet")


def _config(folder, out, **changes) -> RunConfig:
    values = dict(dataset="imagenet", data_dir=str(folder), model="mlp-1x512", image_size=12, epochs=3,
                  until="epochs", workers=0, precision="fp32", device="cpu", lr=0.05, out=str(out))
    return RunConfig(**(values | changes))


def _strip(rows):
    return [{k: v for k, v in r.items() if k not in TIMING} for r in rows]


def test_listing_reads_the_class_folders(folder):
    listing = list_image_folder(folder)
    assert listing.classes == CLASSES
    assert len(listing.train_files) == 15 and len(listing.test_files) == 6
    assert listing.train_files[0] == b"train/ant/ant0.png" and list(np.bincount(listing.train_labels)) == [5, 5, 5]


def test_missing_or_malformed_folders_say_what_layout_is_expected(tmp_path, folder):
    with pytest.raises(DataNotFoundError, match=r"train/<class>/<image>\.JPEG.*--data-dir"):
        shattering.run(_config(tmp_path / "nowhere", tmp_path / "runs"))
    (folder / "val" / "dog").mkdir()
    (folder / "val" / "dog" / "x.png").write_bytes(b"")
    with pytest.raises(DataFormatError, match="dog"):
        list_image_folder(folder)


def test_settings_that_do_not_apply_are_refused():
    with pytest.raises(ConfigError, match="image-size applies to image-folder"):
        RunConfig(dataset="digits", image_size=32)
    with pytest.raises(ConfigError, match="inception-v3 only"):
        RunConfig(aux_logits=True)
    with pytest.raises(ConfigError, match="label corruptions only"):
        RunConfig(dataset="imagenet", corruption="shuffled-pixels")


def test_new_settings_keep_the_run_ids_of_earlier_records():
    cfg = RunConfig(dataset="digits", model="alexnet-small", corruption="random-labels", seed=3)
    old = {k: v for k, v in cfg.resolved().hashed_dict().items() if k not in ("image_size", "aux_logits", "sync_bn",
                                                                                      "data_digest", "model_args",
                                                                                      "model_digest", "eval_every",
                                                                                      "optimizer", "beta1", "beta2",
                                                                                      "eps", "alpha", "rho")}
    import hashlib

    canon = json.dumps(old, sort_keys=True, separators=(",", ":"))
    assert cfg.run_id() == hashlib.sha256(canon.encode()).hexdigest()[:12]
    assert RunConfig(dataset="imagenet").run_id() != RunConfig(dataset="imagenet", image_size=64).run_id()
    assert cfg.resolved().data_digest is None  # built-in data sets have none: their ids stay as they were


def test_streamed_runs_are_never_packed(tmp_path, folder):
    from shattering.executors.packing import packed_groups

    configs = [_config(folder, tmp_path, seed=s) for s in range(3)]
    assert [len(g) for g in packed_groups(configs)] == [1, 1, 1]


def test_transforms_stay_in_the_image_and_are_seeded():
    rng = np.random.default_rng(0)
    for _ in range(200):
        left, top, right, bottom = resized_crop_box(40, 25, rng)
        assert 0 <= left < right <= 40 and 0 <= top < bottom <= 25
    left, top, right, bottom = eval_box(40, 20, 16)  # shorter side 20 -> 18, central 16: 17.8 source pixels
    assert right - left == pytest.approx(16 * 20 / 18) and (left + right) / 2 == 20 and (top + bottom) / 2 == 10


def test_decode_gives_uint8_squares(folder):
    path = folder / "train" / "ant" / "ant1.JPEG"
    a = decode(path, 16)
    b = decode(path, 16, np.random.default_rng(5))
    assert a.shape == b.shape == (3, 16, 16) and a.dtype == torch.uint8
    assert torch.equal(b, decode(path, 16, np.random.default_rng(5)))


def test_streamed_run_trains_records_top5_and_stores_its_labels(tmp_path, folder):
    cfg = _config(folder, tmp_path / "runs", corruption="partial-labels", p=0.5)
    result = shattering.run(cfg)
    s = result.summary
    assert s["epochs"] == 3 and s["data"]["streamed"] and s["data"]["n_train"] == 15
    assert s["data"]["shape"] == [3, 12, 12] and 0 < s["data"]["label_noise"] < 1
    rows = RunRecord(result.run_dir).read_metrics()
    assert len(rows) == 3 and {"train_acc_top5", "test_acc_top5", "best_test_acc_top5"} <= set(rows[-1])
    assert rows[-1]["train_acc_top5"] == 1.0  # 3 classes: the top 5 holds every class
    labels = np.load(result.run_dir / LABELS_FILE)
    assert list(labels["y_train"]) == list(shattering.make_data(cfg).y_train)
    assert (labels["y_train"] != labels["y_train_original"]).mean() == pytest.approx(s["data"]["label_noise"])


def test_resume_reads_the_stored_labels_and_ends_as_an_uninterrupted_run(tmp_path, folder, monkeypatch):
    """Reference with two decoding workers; then a run interrupted after epoch 2, resumed after the folder
    gained an image: it keeps its labels and files, and every metric equals the reference's."""
    reference = shattering.run(_config(folder, tmp_path / "a", corruption="random-labels", random_crop=True,
                                       epochs=4, workers=2))
    cfg = _config(folder, tmp_path / "b", corruption="random-labels", random_crop=True, epochs=4)
    saves = {"n": 0}
    original = RunRecord.save_checkpoint

    def interrupt_at_third(self, state):
        saves["n"] += 1
        if saves["n"] == 3:
            raise KeyboardInterrupt
        original(self, state)

    monkeypatch.setattr(RunRecord, "save_checkpoint", interrupt_at_third)
    with pytest.raises(KeyboardInterrupt):
        shattering.run(cfg)
    monkeypatch.setattr(RunRecord, "save_checkpoint", original)
    Image.fromarray(np.zeros((20, 20, 3), np.uint8)).save(folder / "train" / "ant" / "ant_new.png")
    assert len(shattering.make_data(cfg).y_train) == 16  # a fresh listing sees the new image
    resumed = shattering.run(cfg)
    assert resumed.summary["data"]["n_train"] == 15 and len(resumed.summary["resumes"]) == 1
    assert resumed.summary["data_fingerprint"] == reference.summary["data_fingerprint"]
    # equal to the last bit: both on the threads they asked for, none held by the reference's decoding workers
    assert _strip(RunRecord(resumed.run_dir).read_metrics()) == _strip(RunRecord(reference.run_dir).read_metrics())
    assert resumed.summary["execution"]["lease"]["threads"] == reference.summary["execution"]["lease"]["threads"]


def _torchvision_problem() -> str | None:
    try:
        import torchvision  # noqa: F401
    except Exception as exc:  # not installed, or built for another torch (RuntimeError: operator ... nms)
        return f"{type(exc).__name__}: {exc}"
    return None


TORCHVISION_PROBLEM = _torchvision_problem()
# CI's torchvision environment sets this: there a test that needs torchvision fails instead of skipping.
REQUIRED = os.environ.get("SHATTERING_REQUIRE_TORCHVISION") == "1"


@pytest.mark.torchvision
@pytest.mark.skipif(TORCHVISION_PROBLEM is not None and not REQUIRED,
                    reason=f"torchvision cannot be imported here ({TORCHVISION_PROBLEM}); Inception V3 is "
                           "torchvision's (pip install 'shattering[imagenet]' with a torchvision matching torch)")
def test_inception_v3_builds_and_runs_forward_at_its_smallest_input_for_each_option():
    model = shattering.build_model("inception-v3", (3, 75, 75), 10, dropout=0.2)
    model.eval()
    with torch.no_grad():
        assert model(torch.randn(2, 3, 75, 75)).shape == (2, 10)
    with pytest.raises(ConfigError, match=r"at least 75x75 pixels \(299x299 with --aux-logits\)"):
        shattering.build_model("inception-v3", (3, 74, 74), 10)
    aux = shattering.build_model("inception-v3", (3, 299, 299), 10, aux_logits=True).train()
    logits, aux_logits = aux(torch.randn(2, 3, 299, 299))
    assert logits.shape == aux_logits.shape == (2, 10)
    with pytest.raises(ConfigError, match=r"at least 299x299 pixels with its auxiliary classifier"):
        shattering.build_model("inception-v3", (3, 298, 298), 10, aux_logits=True)


def test_the_smallest_sides_follow_from_the_strides():
    """The docstring's arithmetic, computed here independently of torchvision: the side of Mixed_6e's map, and
    what the main path and the auxiliary classifier need of it."""
    from shattering.models.inception_v3 import MIN_SIZE, MIN_SIZE_AUX

    def mixed6(h):
        h = (h - 3) // 2 + 1 - 2  # Conv2d_1a (stride 2), Conv2d_2a
        h = (h - 3) // 2 + 1 - 2  # max pool, Conv2d_4a
        h = (h - 3) // 2 + 1  # max pool: Mixed_5*
        return (h - 3) // 2 + 1  # Mixed_6a: Mixed_6*

    main_ok = [h for h in range(10, 400) if (mixed6(h) - 3) // 2 + 1 >= 1]
    aux_ok = [h for h in range(10, 400) if mixed6(h) >= 5 and (mixed6(h) - 5) // 3 + 1 >= 5]
    assert (main_ok[0], aux_ok[0], mixed6(299)) == (MIN_SIZE, MIN_SIZE_AUX, 17)


def test_aux_logits_on_small_images_is_refused_when_the_config_is_made(folder):
    with pytest.raises(ConfigError, match="--aux-logits needs images of at least 299 pixels"):
        shattering.RunConfig(dataset="imagenet", data_dir=str(folder), model="inception-v3", aux_logits=True,
                             image_size=80)


def test_inception_v3_without_torchvision_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "torchvision", None)  # import torchvision -> ImportError
    with pytest.raises(ConfigError, match=r"pip install 'shattering\[imagenet\]'"):
        shattering.build_model("inception-v3", (3, 299, 299), 1000)


def _shatter(*argv) -> tuple[int, str]:
    from shattering.cli import main

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        rc = main(list(argv))
    return rc, out.getvalue()


def test_imagenet_presets_without_images_fail_with_one_sentence(tmp_path, capsys):
    rc, _ = _shatter("sweep", "table2", "--scale", "smoke", "--out", str(tmp_path), "--quiet")
    err = capsys.readouterr().err.strip()
    assert rc == 2 and len(err.splitlines()) == 1 and "train/<class>/<image>.JPEG" in err and "--data-dir" in err


@pytest.mark.slow
def test_table2_reproduces_at_smoke_scale_on_a_tiny_folder(tmp_path, folder):
    rc, text = _shatter("reproduce", "table2", "--scale", "smoke", "--data-dir", str(folder), "--out",
                        str(tmp_path / "runs"), "--quiet", "--device", "cpu")
    assert rc == 0, text
    table = (tmp_path / "runs" / "artefacts" / "table2" / "table2.md").read_text()
    for paper in ("77.84 [S]", "72.95 [V]", "59.80 [V] (63.16 [S])", "95.20 [V]", "83.6 [V]"):
        assert paper in table, paper
    side = json.loads((tmp_path / "runs" / "artefacts" / "table2" / "table2.json").read_text())
    assert len(side["runs"]) == 7 and all(r["status"] == "not-fit" for r in side["runs"])


def test_streamed_run_fits_at_the_epoch_evaluating_every_epoch_finds(tmp_path):
    # The streamed trainer probes as the in-memory one does (tests/test_evaluation.py): the examples its training
    # pass got wrong, then the others, largest loss first, in the run's precision; the fit epoch does not move.
    folder = write_image_folder(tmp_path / "imagenet", n_train=20)
    settings = dict(dataset="imagenet", data_dir=str(folder), model="mlp-1x512", image_size=12, workers=0,
                    device="cpu", lr=0.1, batch_size=16, corruption="random-labels", until="fit", epochs=300)
    every = shattering.run(**settings, eval_every=1, out=str(tmp_path / "every"))
    default = shattering.run(**settings, out=str(tmp_path / "default"))
    assert every.status == default.status == "fit"
    assert default.summary["fit_epoch"] == every.summary["fit_epoch"] > 10
    assert default.summary["evaluation"]["passes"] < default.summary["fit_epoch"] / 2
    rows = RunRecord(default.run_dir).read_metrics()
    past = [r for r in rows if r.get("fit_probe_checked", 0) > r.get("fit_probe_suspects", 0)]
    assert past, "the probe never went past the suspects"  # (the streamed trainer's second part ran)
