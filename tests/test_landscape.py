"""Tests for `shattering/landscape/` and `shattering/experiments/landscape.py`: filter normalization's property,
every evaluated point against the network evaluated directly with those weights loaded (fp32), the shared first
layer of lines and planes against the plain evaluation (and its fallback where it does not apply), alpha = 0 and
1 against the initial and final networks, the barrier, rise and curvature against hand-made curves, the principal
directions of a trajectory that lies in a known plane, and two runs of different shapes refused."""

from __future__ import annotations

import copy
import json
import sys

import numpy as np
import pytest
import torch
from torch import nn

import shattering
from shattering.errors import ConfigError
from shattering.experiments.landscape import between, line_from_init, plane
from shattering.landscape.directions import combine, random_direction, weights_of
from shattering.landscape.evaluate import evaluate_affine, evaluate_points
from shattering.landscape.slices import (
    barrier,
    central_curvature,
    grid_coefficients,
    largest_rise,
    principal_directions,
)

FAST = {"dataset": "digits", "train_size": 150, "test_size": 60, "epochs": 2, "until": "epochs", "precision": "fp32",
        "device": "cpu", "measures": "none"}


def conv_net() -> nn.Module:
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(),
                        nn.Linear(4 * 8 * 8, 10))
    net.train()
    net(torch.randn(32, 1, 8, 8) * 2 + 0.5)  # running statistics of their own
    return net.eval()


def mlp() -> nn.Module:
    torch.manual_seed(1)
    return nn.Sequential(nn.Flatten(), nn.Linear(64, 32), nn.Tanh(), nn.Linear(32, 10)).eval()


def shattering_mlp() -> nn.Module:
    """shattering's own MLP (layers applied as products: no module hook sees them), 3 tanh layers."""
    from shattering.models.build import build_model

    torch.manual_seed(4)
    return build_model("mlp-3x512", (1, 8, 8), 10, activation="tanh").eval()


def data(n: int = 40):
    g = torch.Generator().manual_seed(3)
    return torch.randn(n, 1, 8, 8, generator=g), torch.randint(0, 10, (n,), generator=g)


def direct(net: nn.Module, point: dict, x, y) -> tuple[float, float]:
    """The network with ``point`` loaded into a copy, evaluated plainly."""
    other = copy.deepcopy(net)
    other.load_state_dict({**other.state_dict(), **point})
    with torch.no_grad():
        logits = other.eval()(x)
    return float(nn.functional.cross_entropy(logits, y)), float((logits.argmax(1) == y).float().mean())


def test_filter_normalization_gives_each_filter_the_norm_of_the_weights_filter():
    theta = weights_of(conv_net())
    d = random_direction(theta, seed=5)
    for k, w in theta.items():
        if w.dim() > 1:
            dims = tuple(range(1, w.dim()))
            assert torch.allclose(torch.linalg.vector_norm(d[k], dim=dims), torch.linalg.vector_norm(w, dim=dims),
                                  rtol=1e-5)
        else:
            assert torch.count_nonzero(d[k]) == 0  # biases and batch norm's parameters zeroed
    kept = random_direction(theta, seed=5, ignore="none")
    assert all(torch.equal(kept[k], theta[k]) for k, w in theta.items() if w.dim() <= 1)
    assert all(torch.equal(d[k], random_direction(theta, seed=5)[k]) for k in d)  # seeded
    assert not torch.equal(d["0.weight"], random_direction(theta, seed=6)["0.weight"])
    with pytest.raises(ConfigError, match="ignore"):
        random_direction(theta, seed=0, ignore="bias")


@pytest.mark.parametrize("make", [mlp, conv_net, shattering_mlp])
def test_every_point_equals_the_network_evaluated_with_those_weights(make):
    net = make()
    x, y = data()
    theta = weights_of(net)
    d1, d2 = random_direction(theta, 1), random_direction(theta, 2)
    coef = grid_coefficients([-1.0, -0.5, 0.0, 0.5, 1.0], [-1.0, 0.0, 1.0])
    points = [combine([(1.0, theta), (float(a), d1), (float(b), d2)]) for a, b in coef.tolist()]
    plain = evaluate_points(net, points, x, y, batch_size=16, chunk=4)
    shared = evaluate_affine(net, theta, [d1, d2], coef, x, y, batch_size=16, chunk=4, check=False)
    expected = np.array([direct(net, p, x, y) for p in points])
    for loss, acc in (plain, shared):
        assert np.allclose(loss, expected[:, 0], rtol=1e-5, atol=1e-6)
        assert np.allclose(acc, expected[:, 1], atol=1e-6)  # the same examples right
    assert loss[coef.tolist().index([0.0, 0.0])] == pytest.approx(direct(net, theta, x, y)[0], rel=1e-6)


class Twice(nn.Module):
    """A network that applies its first layer twice: the shared first layer cannot stand in for it."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(2)
        self.a, self.b = nn.Linear(64, 64), nn.Linear(64, 10)

    def forward(self, x):
        return self.b(torch.tanh(self.a(torch.tanh(self.a(x.flatten(1))))))


def test_a_network_the_shared_first_layer_does_not_fit_is_evaluated_directly():
    net = Twice().eval()
    x, y = data()
    theta = weights_of(net)
    d = random_direction(theta, 1)
    coef = torch.linspace(-1, 1, 9).reshape(-1, 1)
    got = evaluate_affine(net, theta, [d], coef, x, y)  # the check at two points catches it
    expected = [direct(net, combine([(1.0, theta), (float(c), d)]), x, y)[0] for c in coef]
    assert np.allclose(got[0], expected, rtol=1e-5)


def test_barrier_rise_and_curvature_of_hand_made_curves():
    alphas = np.linspace(-0.5, 1.5, 41)
    bump = 2.0 - alphas + 0.8 * np.sin(np.pi * np.clip(alphas, 0, 1))  # ends 2 and 1, a bump of 0.8 at 0.5
    b = barrier(alphas, bump)
    assert b["height"] == pytest.approx(0.8) and b["alpha"] == pytest.approx(0.5)
    assert barrier(alphas, 2.0 - alphas)["height"] == pytest.approx(0.0, abs=1e-12)  # on the straight line
    assert largest_rise(alphas, 3.0 - alphas)["rise"] == 0.0  # monotone: no rise
    rise = largest_rise(alphas, bump)
    assert rise["rise"] > 0 and rise["from_alpha"] < rise["to_alpha"]
    axis = np.linspace(-1, 1, 21)
    assert central_curvature(axis, 3 * axis ** 2 + axis) == pytest.approx(6.0)  # L = 3 a^2: L'' = 6
    with pytest.raises(ConfigError, match="include 0 and 1"):
        barrier([0.2, 0.5], [1.0, 2.0])


def test_the_principal_directions_of_a_trajectory_in_a_known_plane():
    g = torch.Generator().manual_seed(0)
    u, _ = torch.linalg.qr(torch.randn(50, 2, generator=g, dtype=torch.float64))
    final = torch.randn(50, generator=g, dtype=torch.float64)
    coords = torch.tensor([[3.0, 1.0], [2.0, -1.0], [1.0, 0.5], [0.5, 0.2]], dtype=torch.float64)
    snaps = final + coords @ u.T
    pca = principal_directions(snaps, final)
    assert sum(pca["explained"]) == pytest.approx(1.0)
    projector = pca["directions"].T @ pca["directions"]  # the plane found is the plane the points lie in
    assert torch.allclose(projector, u @ u.T, atol=1e-10)
    assert torch.allclose(pca["coordinates"] @ pca["directions"], snaps - final, atol=1e-10)


def test_the_line_from_initialization_ends_at_the_initial_and_final_networks(tmp_path):
    run = shattering.run(**FAST, out=str(tmp_path))
    out = line_from_init(run.run_dir, examples=100)
    i0, i1 = out["alphas"].index(0.0), out["alphas"].index(1.0)
    trained = shattering.load_model(run.run_dir)
    from shattering.experiments.landscape import _loaded
    from shattering.train.trainer import init_model

    loaded, data_, (x, y), _ = _loaded(run.run_dir, 100)
    start = init_model(loaded.config, data_)
    assert out["train_loss"][i0] == pytest.approx(direct(start, weights_of(start), x, y)[0], rel=1e-5)
    assert out["train_loss"][i1] == pytest.approx(direct(trained, weights_of(trained), x, y)[0], rel=1e-5)
    assert out["train_examples"] == 100 and out["rise"]["rise"] >= 0 and out["distance"] > 0


def test_between_two_runs_gives_a_barrier_and_refuses_other_shapes(tmp_path):
    a = shattering.run(**FAST, out=str(tmp_path))
    b = shattering.run(**{**FAST, "seed": 1}, out=str(tmp_path))
    out = between(a.run_dir, b.run_dir, alphas=[0.0, 0.25, 0.5, 0.75, 1.0], examples=100)
    assert out["barrier"]["height"] >= 0 and out["distance"] > 0
    assert out["train_loss"][0] == pytest.approx(a.summary["final"]["train_loss"], rel=0.2)
    other = shattering.run(**{**FAST, "model": "mlp-3x512"}, out=str(tmp_path))
    with pytest.raises(ConfigError, match="different parameters"):
        between(a.run_dir, other.run_dir)
    flat = plane(a.run_dir, grid=5, examples=50)
    assert np.array(flat["train_loss"]).shape == (5, 5) and len(flat["curvature"]) == 2


USER_NET = '''
from torch import nn


def small_conv(input_shape, num_classes):
    c, h, w = input_shape
    return nn.Sequential(nn.Conv2d(c, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(),
                         nn.Linear(4 * h * w, num_classes))
'''


def test_shatter_landscape_on_a_built_in_and_a_user_model(tmp_path, monkeypatch, capsys):
    from shattering.cli import main

    (tmp_path / "landnets.py").write_text(USER_NET)
    monkeypatch.syspath_prepend(str(tmp_path))
    built_in = shattering.run(**FAST, out=str(tmp_path / "runs"))
    user = shattering.run(**{**FAST, "model": "landnets:small_conv"}, out=str(tmp_path / "runs"))
    user2 = shattering.run(**{**FAST, "model": "landnets:small_conv", "optimizer": "adam"}, out=str(tmp_path / "runs"))
    assert main(["landscape", str(built_in.run_dir), "--examples", "60"]) == 0
    assert "line from initialization of mlp-1x512" in capsys.readouterr().out
    assert (built_in.run_dir / "landscape" / "landscape-line.png").stat().st_size > 0
    assert main(["landscape", str(user.run_dir), str(user2.run_dir), "--examples", "60", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["kind"] == "between" and out["batch_norm"] == "recompute" and out["barrier"]["height"] >= 0
    assert main(["landscape", str(user.run_dir), "--kind", "plane", "--grid", "5", "--examples", "40"]) == 0
    assert "curvature of the two central slices" in capsys.readouterr().out
    assert main(["landscape", str(user.run_dir), "--kind", "trajectory"]) == 2  # no snapshots kept: one sentence
    assert "--probe snapshots" in capsys.readouterr().err
    sys.modules.pop("landnets", None)


def _facts(tmp_path, name: str, **cfg):
    from shattering.config import RunConfig
    from shattering.experiments.claims import RunFacts

    folder = tmp_path / name
    folder.mkdir()
    return RunFacts(RunConfig(dataset="digits", model="mlp-1x512", **cfg), {"status": "fit"}, (), folder)


def _keep(run_dir, kind, result, other=None):
    from shattering.experiments.landscape import slice_file
    from shattering.files import atomic_write_json

    slice_file(run_dir, kind, other).parent.mkdir(parents=True, exist_ok=True)
    atomic_write_json(slice_file(run_dir, kind, other), {"settings": {}, "slice": result})


def test_the_landscape_claims_read_the_slices_kept_in_the_records(tmp_path):
    from shattering.experiments.claims import HOLDS, NOT_AT_SCALE, NOT_MEASURED
    from shattering.experiments.claims.landscape import (
        monotone_from_initialization,
        optimizers_separated_by_a_barrier,
        random_labels_sharper,
    )

    sgd, sgd1 = _facts(tmp_path, "a_sgd0"), _facts(tmp_path, "b_sgd1", seed=1)
    adam = _facts(tmp_path, "c_adam", optimizer="adam")
    rand = _facts(tmp_path, "d_rand", corruption="random-labels")
    facts = [sgd, sgd1, adam, rand]
    assert monotone_from_initialization(facts).verdict == NOT_MEASURED  # nothing computed yet: says so
    alphas = [0.0, 0.5, 1.0]
    _keep(sgd.run_dir, "line", {"alphas": alphas, "train_loss": [2.3, 1.0, 0.1], "rise": {"rise": 0.0}})
    _keep(rand.run_dir, "line", {"alphas": alphas, "train_loss": [2.3, 2.4, 0.1], "rise": {"rise": 0.1}})
    assert monotone_from_initialization(facts).verdict == HOLDS  # true labels judged; random shown beside
    _keep(sgd.run_dir, "between", {"barrier": {"height": 0.5, "alpha": 0.5}, "distance": 3.0}, adam.run_dir)
    _keep(sgd.run_dir, "between", {"barrier": {"height": 0.02, "alpha": 0.5}, "distance": 2.0}, sgd1.run_dir)
    verdict = optimizers_separated_by_a_barrier(facts)
    assert verdict.verdict == HOLDS and "between two SGD seeds 0.02" in verdict.text
    _keep(sgd.run_dir, "plane", {"curvature": [1.0, 1.0]})
    _keep(rand.run_dir, "plane", {"curvature": [1.1, 1.1]})
    assert random_labels_sharper(facts).verdict == NOT_AT_SCALE  # 1.1x: under the stated 1.2x


def test_the_landscape_artefact_end_to_end_at_smoke_scale(tmp_path):
    from shattering.experiments.presets import PRESETS
    from shattering.report.reproduce import reproduce

    result = reproduce("landscape", "smoke", out=str(tmp_path), progress=False)
    assert not result["render_errors"]
    folder = tmp_path / "artefacts" / "landscape"
    for name in ("landscape-lines.png", "landscape-between.png", "landscape-planes.png", "landscape.md",
                 "landscape.csv", "landscape.json"):
        assert (folder / name).stat().st_size > 0, name
    side = json.loads((folder / "landscape.json").read_text())
    assert [c["id"] for c in side["claims"]] == [c.id for c in PRESETS["landscape"].claims]
    assert all(c["verdict"] != "not measured" for c in side["claims"])
    md = (folder / "landscape.md").read_text()
    assert "not computed" not in md.split("## Claims")[0]
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    reproduce("landscape", "smoke", out=str(tmp_path), progress=False)  # the slices read back: the same bytes
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before
