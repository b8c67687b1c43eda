"""The researcher's own data (issue 13, item 2): arrays, .npz files and image folders accepted wherever a data set
name is; the layouts torchvision writes found under --data-dir; each bad input refused in one sentence."""

from __future__ import annotations

import json
import re
import tarfile

import numpy as np
import pytest
import torch
from PIL import Image

import shattering
from shattering.cli import main
from shattering.config import RunConfig
from shattering.corruptions import CORRUPTIONS
from shattering.data import dataset_info, load_dataset
from shattering.data.formats import write_cifar_archive, write_idx
from shattering.errors import ConfigError, DataFormatError
from shattering.executors.ray_executor import run_ray
from shattering.experiments.presets import get_preset
from shattering.runs import RunRecord


def digits_arrays(n_train: int = 120, n_test: int = 40, offset: int = 0) -> dict:
    """sklearn's digits as uint8 images 0-240 (N x 1 x 8 x 8) and labels."""
    from sklearn.datasets import load_digits

    d = load_digits()
    x = (d.images * 15).astype(np.uint8)[:, None]
    y = d.target.astype(np.int64)
    tr, te = slice(offset, offset + n_train), slice(offset + n_train, offset + n_train + n_test)
    return {"x_train": x[tr], "y_train": y[tr], "x_test": x[te], "y_test": y[te]}


def write_npz(path, **arrays):
    np.savez(path, **arrays)
    return path


def run_cli(capsys, *argv) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


FAST = ("--corruption", "random-labels", "--until", "fit", "--lr", "0.1", "--device", "cpu", "--quiet")


# --------------------------------------------------------------------------------------------------
# .npz, arrays and folders train and record like a built-in data set
# --------------------------------------------------------------------------------------------------


def test_shatter_run_on_an_npz_file_fits_random_labels_and_records_it(tmp_path, capsys):
    npz = write_npz(tmp_path / "my data.npz", **digits_arrays(), class_names=np.array([f"d{i}" for i in range(10)]))
    out = tmp_path / "runs"
    code, text, err = run_cli(capsys, "run", "--dataset", str(npz), *FAST, "--out", str(out), "--json")
    assert code == 0, err
    summary = json.loads(text)
    assert summary["status"] == "fit" and summary["final"]["train_acc"] == 1.0
    assert summary["data"]["label_noise"] > 0.8 and len(summary["data_fingerprint"]) == 32
    assert summary["data"]["classes"] == 10 and summary["data"]["shape"] == [1, 8, 8]
    (folder,) = out.iterdir()
    digest = dataset_info(str(npz)).extra["digest"]
    assert folder.name.startswith(f"my-data-{digest[:8]}_mlp-1x512_random-labels_")  # a safe label, no path
    config = RunRecord(folder).read_config()
    assert config["data"]["class_names"] == [f"d{i}" for i in range(10)] and config["data"]["name"] == str(npz)
    assert config["config"]["dataset"] == str(npz) and config["config"]["data_digest"] == digest
    assert summary["data"]["preprocessing"]["pixel_scale"] == 255.0
    assert summary["data"]["preprocessing"]["crop"] is None
    assert summary["data"]["preprocessing"]["whitening"] == "per-image"
    # the same command again reuses the record; a relative path names the same data set
    code, text, _ = run_cli(capsys, "run", "--dataset", str(npz), *FAST, "--out", str(out), "--json")
    assert code == 0 and json.loads(text)["run_id"] == summary["run_id"] and len(list(out.iterdir())) == 1


def test_array_data_runs_like_a_built_in_data_set_and_is_named_by_its_arrays(tmp_path):
    arrays = digits_arrays()
    data = shattering.ArrayData(*arrays.values(), name="mine")
    result = shattering.run(dataset=data, corruption="random-labels", lr=0.1, device="cpu", out=str(tmp_path))
    assert result.fit and result.summary["data"]["name"] == data.dataset_name
    assert data.dataset_name.startswith("mine-") and result.run_dir.name.startswith(data.dataset_name + "_")
    # the same arrays (as torch tensors, N x H x W x C) give the same name and run id: the record is reused
    same = shattering.ArrayData(torch.from_numpy(arrays["x_train"]).permute(0, 2, 3, 1), arrays["y_train"],
                                torch.from_numpy(arrays["x_test"][:, 0]), torch.from_numpy(arrays["y_test"]),
                                name="mine")
    assert same.dataset_name == data.dataset_name
    again = shattering.run(RunConfig(dataset=same, corruption="random-labels", lr=0.1, device="cpu",
                                     out=str(tmp_path)))
    assert again.run_dir == result.run_dir and again.summary == result.summary
    # different arrays never share a record, and the fingerprint covers them
    x = arrays["x_train"].copy()
    x[0, 0, 0, 0] += 1
    changed = dict(arrays, x_train=x)
    other = shattering.ArrayData(*changed.values(), name="mine")
    cfg = RunConfig(dataset=other, corruption="random-labels", lr=0.1, out=str(tmp_path))
    assert other.dataset_name != data.dataset_name and cfg.run_id() != result.summary["run_id"]
    assert shattering.make_data(cfg).fingerprint != result.summary["data_fingerprint"]
    first = RunConfig(dataset=data, corruption="random-labels", lr=0.1, device="cpu", out=str(tmp_path))
    assert shattering.make_data(first).fingerprint == result.summary["data_fingerprint"]


def test_the_paper_preprocessing_and_all_six_randomizations_apply_to_the_users_arrays():
    arrays = digits_arrays(60, 20)
    floats = shattering.ArrayData(*(a.astype(np.float32) / 240 if a.dtype == np.uint8 else a
                                    for a in arrays.values()), name="floats")
    assert dataset_info(RunConfig(dataset=floats).dataset).pixel_scale == 1.0
    info = dataset_info(RunConfig(dataset=shattering.ArrayData(*arrays.values(), name="ints")).dataset)
    assert info.pixel_scale == 255.0 and info.crop is None and info.whitening == "per-image" and info.kind == "arrays"
    prints = set()
    for corruption in CORRUPTIONS:
        p = 0.5 if corruption == "partial-labels" else None
        data = shattering.make_data(RunConfig(dataset=floats, corruption=corruption, p=p))
        assert data.corruption == corruption and data.shape == (1, 8, 8) and data.n_train == 60
        if corruption == "true-labels":
            assert np.allclose(data.x_test.mean(axis=(1, 2, 3)), 0, atol=1e-5)  # per-image whitening
            assert data.preprocessing["whitening"] == "per-image" and data.preprocessing["crop"] is None
        prints.add(data.fingerprint)
    assert len(prints) == len(CORRUPTIONS)
    d = load_dataset(RunConfig(dataset=floats).dataset, crop=6, whitening="none")
    assert d.shape == (1, 6, 6) and float(d.x_train.max()) <= 1.0


def test_images_may_be_nchw_nhwc_or_grey_and_an_ambiguous_shape_is_refused():
    rng = np.random.default_rng(0)
    y, yt = np.arange(6) % 2, np.arange(4) % 2
    nhwc = rng.integers(0, 256, (6, 5, 7, 3), dtype=np.uint8)
    a = shattering.ArrayData(nhwc, y, nhwc[:4], yt)
    assert a.arrays["x_train"].shape == (6, 3, 5, 7) and (a.arrays["x_train"][1, 2] == nhwc[1, :, :, 2]).all()
    b = shattering.ArrayData(nhwc.transpose(0, 3, 1, 2), y, nhwc[:4].transpose(0, 3, 1, 2), yt)
    assert b.digest == a.digest
    grey = shattering.ArrayData(nhwc[..., 0], y, nhwc[:4, ..., 0], yt)
    assert grey.arrays["x_train"].shape == (6, 1, 5, 7) and grey.class_names == ("0", "1")
    with pytest.raises(DataFormatError, match=r"shape \[6, 3, 5, 3\], where the channel axis cannot be told"):
        shattering.ArrayData(np.zeros((6, 3, 5, 3), np.uint8), y, nhwc[:4], yt)
    with pytest.raises(DataFormatError, match="channel axis cannot be told"):
        shattering.ArrayData(np.zeros((6, 4, 8, 8), np.uint8), y, np.zeros((4, 4, 8, 8), np.uint8), yt)
    with pytest.raises(DataFormatError, match="holds int64 values; give uint8 pixels"):
        shattering.ArrayData(nhwc.astype(np.int64), y, nhwc[:4], yt)
    with pytest.raises(DataFormatError, match="name must be letters"):
        shattering.ArrayData(nhwc, y, nhwc[:4], yt, name="a/b")


def test_an_image_folder_of_pngs_trains(tmp_path, capsys):
    rng = np.random.default_rng(1)
    root = tmp_path / "shapes"
    for split, n in (("train", 8), ("val", 3)):
        for c in ("circle", "square"):
            (root / split / c).mkdir(parents=True)
            for i in range(n):
                Image.fromarray(rng.integers(0, 256, (6, 6), dtype=np.uint8), "L").save(root / split / c / f"{i}.png")
    out = tmp_path / "runs"
    code, text, err = run_cli(capsys, "run", "--dataset", str(root), *FAST, "--out", str(out), "--json")
    assert code == 0, err
    summary = json.loads(text)
    assert summary["status"] == "fit" and summary["data"]["n_train"] == 16 and summary["data"]["n_test"] == 6
    assert summary["data"]["classes"] == 2 and summary["data"]["shape"] == [1, 6, 6]
    (folder,) = out.iterdir()
    assert folder.name.startswith("shapes-") and RunRecord(folder).read_config()["data"]["class_names"] == [
        "circle", "square"]
    # a colour image makes the data set RGB; a changed folder is read again under a new digest
    before = dataset_info(str(root)).extra["digest"]
    Image.fromarray(rng.integers(0, 256, (6, 6, 3), dtype=np.uint8), "RGB").save(root / "val" / "circle" / "c.png")
    info = dataset_info(str(root))
    assert info.shape == (3, 6, 6) and info.n_test == 7 and info.extra["digest"] != before


def test_reproduce_and_presets_take_the_users_data(tmp_path):
    data = shattering.ArrayData(*digits_arrays(60, 20).values(), name="preset")
    configs = get_preset("fig1a").configs("smoke", dataset=data, out=str(tmp_path))
    assert configs and {c.dataset for c in configs} == {data.dataset_name}
    npz = write_npz(tmp_path / "p.npz", **digits_arrays(60, 20))
    configs = get_preset("fig1bc").configs("smoke", dataset=str(npz), out=str(tmp_path))
    assert {c.dataset for c in configs} == {str(npz)}
    notes = get_preset("fig1bc").notes("smoke", dataset=str(npz))
    assert any("p.npz" in n for n in notes)


def test_ray_refuses_arrays_that_live_in_this_process(tmp_path):
    data = shattering.ArrayData(*digits_arrays(30, 10).values(), name="local")
    with pytest.raises(ConfigError, match=r"arrays held in this process, which Ray workers cannot read; save them "
                                          r"with numpy.savez\('local.npz'"):
        list(run_ray([RunConfig(dataset=data, out=str(tmp_path))]))
    assert not list(tmp_path.iterdir())


def test_a_data_digest_pins_the_data(tmp_path):
    npz = write_npz(tmp_path / "pin.npz", **digits_arrays(40, 10))
    cfg = RunConfig(dataset=str(npz)).resolved()
    old_id = cfg.run_id()
    assert len(cfg.data_digest) == 32 and RunConfig(dataset=str(npz), data_digest=cfg.data_digest).run_id() == old_id
    write_npz(npz, **digits_arrays(40, 10, offset=5))  # the file changes: a new digest, a new run id
    assert RunConfig(dataset=str(npz)).resolved().data_digest != cfg.data_digest
    assert RunConfig(dataset=str(npz)).run_id() != old_id
    for pinned in (lambda: RunConfig(dataset=str(npz), data_digest=cfg.data_digest), cfg.run_id):
        with pytest.raises(ConfigError, match="the files changed since"):
            pinned()
    with pytest.raises(ConfigError, match="applies to data sets given by path or arrays"):
        RunConfig(dataset="digits", data_digest=cfg.data_digest)
    assert RunConfig(dataset="digits").resolved().data_digest is None


# --------------------------------------------------------------------------------------------------
# torchvision's layouts under --data-dir
# --------------------------------------------------------------------------------------------------


def _write_mnist_raw(folder, gz: bool):
    rng = np.random.default_rng(2)
    folder.mkdir(parents=True)
    suffix = ".gz" if gz else ""
    write_idx(folder / f"train-images-idx3-ubyte{suffix}", rng.integers(0, 256, (30, 28, 28), dtype=np.uint8))
    write_idx(folder / f"train-labels-idx1-ubyte{suffix}", (np.arange(30) % 10).astype(np.uint8))
    write_idx(folder / f"t10k-images-idx3-ubyte{suffix}", rng.integers(0, 256, (10, 28, 28), dtype=np.uint8))
    write_idx(folder / f"t10k-labels-idx1-ubyte{suffix}", (np.arange(10) % 10).astype(np.uint8))


@pytest.mark.parametrize(("name", "folder", "gz"), [("mnist", "MNIST", False), ("fashion-mnist", "FashionMNIST", True)])
def test_torchvision_mnist_raw_folders_are_found_under_data_dir(tmp_path, capsys, name, folder, gz):
    root = tmp_path / "torchvision"
    _write_mnist_raw(root / folder / "raw", gz)
    for data_dir in (root, root / folder, root / folder / "raw"):
        code, text, err = run_cli(capsys, "data", "show", "--dataset", name, "--data-dir", str(data_dir), "--json")
        assert code == 0, err
        shown = json.loads(text)
        assert (shown["n_train"], shown["n_test"], shown["shape"]) == (30, 10, [1, 28, 28])
        assert shown["preprocessing"]["source"] == str(root / folder / "raw")
    code, _, err = run_cli(capsys, "run", "--dataset", name, "--data-dir", str(root), "--epochs", "1", "--until",
                           "epochs", "--device", "cpu", "--quiet", "--out", str(tmp_path / "runs"))
    assert code == 0, err


@pytest.mark.parametrize(("variant", "folder"), [("cifar10", "cifar-10-batches-py"), ("cifar100", "cifar-100-python")])
def test_extracted_cifar_folders_are_found_under_data_dir(tmp_path, capsys, variant, folder):
    rng = np.random.default_rng(3)
    k = 10 if variant == "cifar10" else 100
    archive = write_cifar_archive(tmp_path / "a.tar.gz", variant, rng.integers(0, 256, (20, 3, 32, 32)),
                                  np.arange(20) % k, rng.integers(0, 256, (5, 3, 32, 32)), np.arange(5) % k)
    root = tmp_path / "torchvision"
    root.mkdir()
    with tarfile.open(archive) as tar:
        tar.extractall(root, filter="data")
    for data_dir in (root, root / folder):
        code, text, err = run_cli(capsys, "data", "show", "--dataset", variant, "--data-dir", str(data_dir), "--json")
        assert code == 0, err
        shown = json.loads(text)
        assert (shown["n_train"], shown["n_test"], shown["preprocessing"]["source"]) == (20, 5, str(root / folder))


# --------------------------------------------------------------------------------------------------
# Bad input: one sentence naming the problem and the fix, exit 2, no record folder
# --------------------------------------------------------------------------------------------------


def _bad_npz(tmp_path, **changes):
    arrays = {**digits_arrays(20, 10), **changes}
    return write_npz(tmp_path / "bad.npz", **{k: v for k, v in arrays.items() if v is not None})


def _garbage(path):
    path.write_bytes(b"garbage")
    return path


def _folder_without_test(tmp_path):
    (tmp_path / "notest" / "train" / "a").mkdir(parents=True)
    return tmp_path / "notest"


def _folder(tmp_path, sizes=((6, 6), (6, 6)), garbage=False):
    root = tmp_path / "imgs"
    for split in ("train", "test"):
        for c, size in zip(("a", "b"), sizes, strict=True):
            (root / split / c).mkdir(parents=True)
            Image.fromarray(np.zeros(size, np.uint8)).save(root / split / c / "0.png")
    if garbage:
        (root / "train" / "a" / "broken.png").write_bytes(b"not a png at all")
    return root


BAD = {
    "npz missing an array": (lambda t: _bad_npz(t, y_test=None), r"lacks the array\(s\) y_test; save x_train"),
    "labels out of range": (lambda t: _bad_npz(t, class_names=np.array(["a", "b"])),
                            r"y_train has 16 label\(s\) outside the 2 classes 0..1 \(values 2, 3, 4, 5, 6 and 3 "
                            r"more\); give labels 0..K-1"),
    "negative labels": (lambda t: _bad_npz(t, y_test=-np.ones(10, np.int64)),
                        r"y_test has 10 label\(s\) outside 0..K-1 \(values -1\)"),
    "a label beyond the classes": (lambda t: _bad_npz(t, y_train=np.where(np.arange(20) == 4, 57, np.arange(20) % 10)),
                                   r"bad.npz:y_train and .*y_test hold 11 distinct labels, so K = 11 classes 0..10, "
                                   r"but 1 label\(s\) lie outside them \(values 57\): as they are, 47 of 58 classes "
                                   r"would have no example and chance would be 1/58; relabel the classes 0..10, or "
                                   r"give num_classes=58"),
    "num_classes below the labels": (lambda t: _bad_npz(t, num_classes=np.array(5)),
                                     r"y_train has 10 label\(s\) outside the 5 classes 0..4 \(values 5, 6, 7, 8, 9\)"),
    "num_classes and class_names disagree": (lambda t: _bad_npz(t, num_classes=np.array(12),
                                                                class_names=np.array([str(i) for i in range(10)])),
                                             "class_names names 10 classes but .*num_classes is 12"),
    "labels of the wrong length": (lambda t: _bad_npz(t, y_train=np.zeros(7, np.int64)),
                                   "y_train holds 7 labels for 20 images; give one label per image"),
    "mismatched image shapes": (lambda t: _bad_npz(t, x_test=np.zeros((10, 1, 7, 7), np.uint8)),
                                r"x_train holds images of shape \[1, 8, 8\] but .*x_test \[1, 7, 7\]; give both"),
    "ambiguous shape": (lambda t: _bad_npz(t, x_train=np.zeros((20, 3, 8, 3), np.uint8)),
                        "where the channel axis cannot be told"),
    "not an npz": (lambda t: _garbage(t / "x.npz"), r"x.npz is not an .npz file \(an .npz is a zip archive, and this "
                                                    r"file is not one\); save the arrays with numpy.savez"),
    "folder without train and test": (_folder_without_test, r"holds no train/ and test/ \(or val/\) sub-folders"),
    "unreadable image": (lambda t: _folder(t, garbage=True), r"broken.png is not a readable image .*; remove it"),
    "images of two sizes": (lambda t: _folder(t, sizes=((6, 6), (5, 7))),
                            r"are not all one size: .*0.png is 6x6 and .*0.png is 7x5; resize them"),
    "a path that does not exist": (lambda t: t / "nowhere" / "data.npz", r"nowhere/data.npz does not exist; pass an"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_user_data_is_refused_in_one_sentence_with_exit_2_and_no_record(tmp_path, capsys, case):
    make, message = BAD[case]
    path = make(tmp_path)
    out = tmp_path / "runs"
    code, _, err = run_cli(capsys, "run", "--dataset", str(path), *FAST, "--out", str(out))
    assert code == 2
    assert err.startswith("shatter: error:") and err.count("\n") == 1 and "Traceback" not in err
    assert re.search(message, err), err
    assert not out.exists()
    with pytest.raises(ConfigError):  # the same sentence from Python
        shattering.run(dataset=str(path), out=str(out))
    assert not out.exists()


def test_no_refusal_quotes_numpys_allow_pickle_advice(tmp_path, capsys):
    pickled = tmp_path / "pickled.npz"
    pickled.write_bytes(b"\x80\x04K\x01.")  # a pickle, as numpy would read it with allow_pickle=True
    code, _, err = run_cli(capsys, "run", "--dataset", str(pickled), *FAST, "--out", str(tmp_path / "runs"))
    assert code == 2 and "allow_pickle" not in err and "is not an .npz file" in err


def test_an_explicit_num_classes_keeps_classes_without_examples(tmp_path, capsys):
    arrays = digits_arrays(60, 20)
    arrays["y_train"] = np.where(arrays["y_train"] == 9, 11, arrays["y_train"])  # class 9 missing, 11 present
    arrays["y_test"] = np.where(arrays["y_test"] == 9, 0, arrays["y_test"])
    path = write_npz(tmp_path / "sparse.npz", **arrays, num_classes=np.array(12))
    code, out, _ = run_cli(capsys, "data", "show", "--dataset", str(path), "--json")
    shown = json.loads(out)
    assert code == 0 and shown["classes"] == 12
    assert shown["missing_classes"] == {"train": [9, 10], "test": [9, 10, 11]}
    assert any("2 of the 12 classes (9, 10) have no example in the training split" in w for w in shown["warnings"])
    data = shattering.ArrayData(**arrays, num_classes=12)
    assert len(data.class_names) == 12


def test_a_class_missing_from_one_split_is_a_warning_in_the_output_and_the_record(tmp_path, capsys):
    arrays = digits_arrays(120, 40)
    keep = arrays["y_train"] != 3  # class 3 only in the test split
    arrays["x_train"], arrays["y_train"] = arrays["x_train"][keep], arrays["y_train"][keep]
    path = write_npz(tmp_path / "no3.npz", **arrays)
    code, out, _ = run_cli(capsys, "run", "--dataset", str(path), *FAST, "--epochs", "2", "--out",
                           str(tmp_path / "runs"))
    warning = "1 of the 10 classes (3) has no example in the training split"
    assert code == 0 and f"warning:  {warning}" in out
    (summary,) = [json.loads(p.read_text()) for p in (tmp_path / "runs").rglob("summary.json")]
    assert any(w.startswith(warning) for w in summary["warnings"])
    assert summary["data"]["missing_classes"] == {"train": [3]}
    code, out, _ = run_cli(capsys, "data", "show", "--dataset", str(path))
    assert code == 0 and warning in out


def test_an_unknown_name_is_refused_by_the_parser(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["run", "--dataset", "nope", "--quiet"])
    assert exc.value.code == 2 and "unknown data set 'nope'" in capsys.readouterr().err


def test_a_folder_with_a_dangling_link_is_stamped_not_refused(tmp_path):
    """A link whose target is gone (as under /etc on some machines) changes the stamp's text, not whether it can
    be computed: the folder is then judged on its contents (here, no images) in one sentence elsewhere."""
    from shattering.data.user_data import files_stamp

    (tmp_path / "a.txt").write_text("x")
    before = files_stamp(tmp_path)
    (tmp_path / "gone").symlink_to(tmp_path / "nowhere")
    after = files_stamp(tmp_path)
    assert before != after and len(after) == 32
