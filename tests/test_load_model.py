"""A finished run's network read back (`shattering.load_model`, `shattering.read_checkpoint`): the network a run
trained, in eval mode, giving the predictions the run recorded; refusals in one sentence for runs that cannot
give one (unfinished, no checkpoint, a damaged checkpoint)."""

from __future__ import annotations

import pytest
import torch

import shattering
from shattering.cli import main
from shattering.errors import RecordError
from shattering.runs import RunRecord

RUN = {"dataset": "digits", "model": "mlp-1x512", "corruption": "random-labels", "train_size": 80, "test_size": 40,
       "device": "cpu", "precision": "fp32"}


@pytest.fixture
def fit(tmp_path):
    result = shattering.run(**RUN, out=str(tmp_path / "runs"))
    assert result.fit
    return result


def test_load_model_gives_the_trained_network_in_eval_mode(fit):
    net = shattering.load_model(fit.run_dir)
    assert isinstance(net, torch.nn.Module) and not net.training
    data = shattering.make_data(shattering.RunConfig(**RUN))
    with torch.no_grad():
        predictions = net(torch.from_numpy(data.x_train)).argmax(1).numpy()
    assert (predictions == data.y_train).all()  # it memorized the random labels, as the run recorded
    test_acc = float((net(torch.from_numpy(data.x_test)).argmax(1).numpy() == data.y_test).mean())
    assert test_acc == pytest.approx(fit.test_acc)


def test_read_checkpoint_reads_what_torch_load_alone_cannot(fit):
    path = fit.run_dir / "checkpoint.pt"
    with pytest.raises(Exception):  # noqa: B017 -- the file has a checksum header: torch.load refuses it
        torch.load(path, weights_only=False)
    for where in (fit.run_dir, path):
        state = shattering.read_checkpoint(where)
        assert state["epoch"] == fit.summary["epochs"] and "model" in state and "optimizer" in state
    net = shattering.load_model(fit.run_dir)
    assert all(torch.equal(net.state_dict()[k], v) for k, v in state["model"].items())


def test_a_damaged_checkpoint_is_refused_and_the_advice_is_to_rerun(fit, capsys):
    for name in ("checkpoint.pt", "checkpoint.prev.pt"):
        path = fit.run_dir / name
        if path.exists():
            data = bytearray(path.read_bytes())
            data[-100] ^= 0xFF
            path.write_bytes(bytes(data))
    with pytest.raises(RecordError, match=r"has no intact checkpoint \(checkpoint.pt is damaged \(checksum "
                                          r"mismatch\)\); train the run again with --rerun") as info:
        shattering.load_model(fit.run_dir)
    assert "keep_checkpoints 'last'" not in str(info.value)
    with pytest.raises(RecordError, match="is not a readable checkpoint"):
        shattering.read_checkpoint(fit.run_dir / "checkpoint.pt")
    assert main(["measures", str(fit.run_dir)]) == 2
    err = capsys.readouterr().err
    assert "--rerun" in err and "keep_checkpoints 'last'" not in err


def test_an_unfinished_run_and_a_folder_without_a_run_are_refused(fit, tmp_path):
    (fit.run_dir / "summary.json").unlink()
    with pytest.raises(RecordError, match="has not finished"):
        shattering.load_model(fit.run_dir)
    with pytest.raises(RecordError, match="is no run record"):
        shattering.load_model(tmp_path)
    assert RunRecord(fit.run_dir).damage() == []
