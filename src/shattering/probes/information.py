"""The ``information`` probe: each layer's place in the information plane at the chosen epochs (its class
docstring), and :func:`load_information` to read its files back."""

from __future__ import annotations

import json
import math
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ConfigError
from ..lease import spare_threads
from . import PROBES_FOLDER, Probe, RunState, _EvalMode, layer_outputs, nn, register_probe, sampled, torch

INFO_MAX_FEATURES = 4096  # the pairwise estimators (KDE, kNN) on layers this wide at most; binning on every layer
KNN_UNITS = 128  # the default of knn_units=: the widest layer the kNN estimator runs on (the class docstring)


@register_probe
class Information(Probe):
    """Each layer's place in the information plane at the chosen epochs (Shwartz-Ziv and Tishby 2017; Saxe et
    al., ICLR 2018), as ``probes/information/epoch-0007.json``: for every layer (the representations the
    ``activations`` probe records, or the modules named by ``layers=NAME+NAME``, their outputs) on a fixed, seeded
    sample of training examples with the labels as trained, in eval mode, the estimators of
    :mod:`shattering.information`: binned I(X;T) and I(T;Y) at each bin count of ``bins=`` (default 30 and 100,
    ``bins=30+100``) with the ceiling log2 N; the Kolchinsky-Tracey upper and lower values at the noise variance
    ``noise=`` (default 0.1, Saxe et al.'s); the k-nearest-neighbour I(T;Y) (k = 3) on layers of at most
    ``knn_units=`` units (default 128): its neighbours are counted on float64 distances, whose product on a
    1024-unit layer costs about as much as the rest of the probe, and its bias grows with the units (Kraskov et
    al.), so on a wide layer it says little for its cost; ``knn_units=4096`` asks for it everywhere. The pairwise
    estimators only on layers of at most :data:`INFO_MAX_FEATURES` features (a convolution's output is larger:
    binning alone there). Options: ``examples`` (default 1000), ``seed``; default schedule ``log=20``. Every
    value is in bits. :func:`shattering.load_curves` returns them, one column per layer and estimator."""

    name = "information"
    defaults = {"log": "20", "examples": "1000", "seed": "0", "bins": "30+100", "noise": "0.1", "layers": "",
                "knn_units": str(KNN_UNITS)}
    options_taken = ("examples", "seed", "bins", "noise", "layers", "knn_units")

    def __init__(self, **options: str):
        super().__init__(**options)
        for key in ("examples", "seed", "knn_units"):
            if not self.options[key].isdigit() or (key == "examples" and int(self.options[key]) < 2):
                raise ConfigError(f"The probe 'information' takes {key}= as a whole number"
                                  f"{' of at least 2' if key == 'examples' else ''}; got {self.options[key]!r}.")
        bins = self.options["bins"].split("+")
        if not all(b.isdigit() and int(b) >= 2 for b in bins):
            raise ConfigError("The probe 'information' takes bins= as bin counts of at least 2 separated by '+' "
                              f"(bins=30+100); got {self.options['bins']!r}.")
        try:
            noise = float(self.options["noise"])
        except ValueError:
            noise = -1.0
        if not (noise > 0 and math.isfinite(noise)):
            raise ConfigError(f"The probe 'information' takes noise= as a positive variance (noise=0.1); got "
                              f"{self.options['noise']!r}.")
        self.bins, self.noise, self.knn_units = [int(b) for b in bins], noise, int(self.options["knn_units"])
        self.layers = [n for n in self.options["layers"].split("+") if n]

    def on_epoch_end(self, state: RunState) -> None:
        idx, x = sampled(self, state)
        y = np.asarray(state.data.y_train)[idx.numpy()]
        with _EvalMode(state.model) as model:
            reps = self._representations(model, x)
        with spare_threads():  # the distance matrices use idle cores while a small network trains on one
            out = self._estimates(reps, y)
        state.write_bytes(self.name, ".json", json.dumps({"epoch": state.epoch, "layers": out},
                                                         sort_keys=True).encode())

    def _estimates(self, reps: dict[str, np.ndarray], y: np.ndarray) -> dict[str, dict]:
        """Every estimator on every layer's representation: layer -> estimator -> value (bits)."""
        from .. import information  # here: the estimators load scipy

        out: dict[str, dict] = {}
        for name, t in reps.items():
            entry: dict[str, Any] = out.setdefault(name, {"features": int(t.shape[1]), "examples": int(t.shape[0])})
            for b in self.bins:
                binned = information.binned_information(t, y, bins=b)
                entry[f"binned{b}_i_xt"], entry[f"binned{b}_i_ty"] = binned.i_xt, binned.i_ty
                entry["ceiling"] = binned.ceiling
            if t.shape[1] > INFO_MAX_FEATURES:
                continue
            if t.shape[1] <= self.knn_units:
                kde, entry["knn_i_ty"] = information.pairwise_information(t, y, noise_var=self.noise)  # one pass
            else:
                kde = information.kde_information_bounds(t, y, noise_var=self.noise)
            entry.update(kde_i_xt_upper=kde.i_xt_upper, kde_i_xt_lower=kde.i_xt_lower, kde_i_ty_upper=kde.i_ty_upper,
                         kde_i_ty_lower=kde.i_ty_lower, noise=self.noise)
        return out

    def _representations(self, model: nn.Module, x: torch.Tensor) -> dict[str, np.ndarray]:
        """Each layer's representation (examples x features, float64), in batches of 256."""
        if self.layers:
            modules = dict(model.named_modules())
            missing = [n for n in self.layers if n not in modules]
            if missing:
                raise ConfigError(f"The probe 'information' names layers the network does not have: "
                                  f"{', '.join(missing)}; its modules: {', '.join(n for n in modules if n)}.")
        seen: dict[str, list] = {}
        for start in range(0, len(x), 256):
            xb = x[start:start + 256]
            if self.layers:
                caught: dict[str, Any] = {}
                handles = [modules[n].register_forward_hook(
                    lambda m, i, o, n=n, caught=caught: caught.setdefault(n, o[0] if isinstance(o, tuple) else o))
                    for n in self.layers]
                try:
                    model(xb)
                finally:
                    for h in handles:
                        h.remove()
                found = caught
            else:
                found = {k: v for k, v in layer_outputs(model, xb).items() if k != "output"}
            for name, value in found.items():
                seen.setdefault(name, []).append(value.detach().flatten(1))
        return {name: torch.cat(parts).double().cpu().numpy() for name, parts in seen.items()}


def load_information(run_dir: str | Path) -> dict[int, dict[str, dict]]:
    """The ``information`` probe's files of one run: epoch -> layer -> estimator -> value (bits). A file that is
    not the probe's (it writes atomically, so a damaged or foreign one) is left out with a warning naming it."""
    out, skipped = {}, []
    for path in sorted((Path(run_dir) / PROBES_FOLDER / "information").glob("epoch-*.json")):
        try:
            found = json.loads(path.read_text())
            epoch = int(found.get("epoch", path.stem.split("-")[1]))
        except (OSError, ValueError, AttributeError, TypeError):
            found = None
        if isinstance(found, dict) and isinstance(found.get("layers"), dict):
            out[epoch] = found["layers"]
        else:
            skipped.append(path.name)
    if skipped:
        warnings.warn(f"{Path(run_dir) / PROBES_FOLDER / 'information'}: {', '.join(skipped)} not read (not the "
                      "information probe's JSON: damaged or foreign); delete them, or rerun the run to probe those "
                      "epochs again.", stacklevel=2)
    return out
