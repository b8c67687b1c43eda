"""The built-in complexity measures, each declared once in the registry (:mod:`.registry`): the candidates that
Zhang et al. (ICLR 2017, Section 5) found wanting and later work measured (Neyshabur et al. 2015 and 2017;
Bartlett, Foster and Telgarsky 2017; Jiang et al. 2020), in the order tables show them. The maths is in
:mod:`.norms`, :mod:`.margins` and :mod:`.flatness`; here each measure's record, and the computations several
of them share (:meth:`~.registry.MeasureInput.shared`): the layer-wise norms (one pass over the weighted
layers), the margins (one evaluation pass) and the PAC-Bayes bisection.
"""

from __future__ import annotations

import math

from .._lazy import lazy_import
from .compute import FLATNESS_EXAMPLES
from .registry import MeasureInput, register_measure

# The maths, imported when a measure is first computed (torch with it): `shatter --help` and `shatter runs` read
# the records below without torch.
flatness = lazy_import(f"{__package__}.flatness")
layers = lazy_import(f"{__package__}.layers")
margins = lazy_import(f"{__package__}.margins")
norms = lazy_import(f"{__package__}.norms")

BARTLETT = "Bartlett, Foster and Telgarsky 2017"
JIANG = 'Jiang et al. 2020, "Fantastic generalization measures"'
LAYERS = ("A_i: the weighted layers (linear and convolutional, the batch norm after one folded in, eval mode; a "
          "lone batch norm a diagonal layer diag(s))")


def _layers(m: MeasureInput) -> dict:
    def compute() -> dict:
        out = norms.layer_norms(layers.weighted_layers(m.model, m.input_shape))
        m.facts["weighted_layers"] = out["weighted_layers"]
        return out
    return m.shared("layers", compute)


def _margins(m: MeasureInput) -> dict:
    return m.shared("margins", lambda: margins.margin_summary(
        margins.margins(margins.logits(m.model, m.x, m.batch_size), m.y)))


def _flatness(m: MeasureInput) -> dict:
    def compute() -> dict:
        x, y = m.x[:FLATNESS_EXAMPLES], m.y[:FLATNESS_EXAMPLES]
        m.facts.setdefault("measures_on", {})["flatness_examples"] = len(x)
        return flatness.pac_bayes_sigma(m.model, x, y, batch_size=m.batch_size)
    return m.shared("flatness", compute)


def _spectral_product(m: MeasureInput) -> float:
    value = _layers(m)["spectral_product"]
    if value is None:
        raise layers.Unmeasurable("the product overflows a float (log_spectral_product holds its logarithm)")
    return value


def _normalized_margin(m: MeasureInput) -> float:
    log_ra = m.value("log_spectral_complexity")
    p10 = m.value("margin_p10")
    scale = m.shared("data_scale", lambda: margins.data_scale(m.x))
    if log_ra >= 700 or scale <= 0:
        raise layers.Unmeasurable("the spectral complexity overflows a float")
    return p10 / math.exp(log_ra) / scale


def _bound_term(m: MeasureInput) -> float:
    return m.value("distance_from_init") ** 2 / (4 * m.value("pac_bayes_sigma") ** 2)


register_measure(
    "l2_norm", lambda m: norms.l2_norm(m.model), title="l2 norm of the weights", heading="l2",
    formula="sqrt(sum of the squared trained parameters): every parameter SGD updates, weights and biases; a "
            "parameter frozen at its initial value (the Inceptions' batch-norm scale fixed at 1) is not counted",
    paper=JIANG + ' ("l2")')
register_measure(
    "distance_from_init", lambda m: norms.distance_from_init(m.model, m.init), title="distance from initialization",
    heading="dist init",
    formula="‖w − w0‖₂ over the same parameters, w0 rebuilt from the run's seed (exactly the initialization it "
            "trained from)", paper=f'Nagarajan and Kolter 2019; {JIANG} ("dist.l2")')
register_measure(
    "spectral_product", _spectral_product, title="product of spectral norms", in_table=False,
    formula=f"prod_i ‖A_i‖_σ, {LAYERS}. A linear layer's ‖A‖_σ is its largest singular value; a convolution's "
            "the operator norm of the convolution on the layer's input shape, with its stride and padding, by 50 "
            "steps of power iteration with conv2d and conv_transpose2d (not the norm of the reshaped kernel). "
            "None where the product overflows a float", paper=BARTLETT)
register_measure(
    "log_spectral_product", lambda m: _layers(m)["log_spectral_product"], title="log product of spectral norms",
    heading="log spec prod", formula="sum_i log ‖A_i‖_σ (the logarithm of `spectral_product`)", paper=BARTLETT)
register_measure(
    "frobenius_sum", lambda m: _layers(m)["frobenius_sum"], title="sum of squared Frobenius norms",
    heading="frob sum", formula="sum_i ‖A_i‖_F², a convolution's A_i its kernel reshaped to (out, in·k·k)",
    paper="Neyshabur, Tomioka and Srebro 2015 (Theorem 1)")
register_measure(
    "log_frobenius_product", lambda m: _layers(m)["log_frobenius_product"], in_table=False,
    title="log product of Frobenius norms", formula="sum_i log ‖A_i‖_F",
    paper="Neyshabur, Tomioka and Srebro 2015")
register_measure(
    "log_spectral_complexity", lambda m: _layers(m)["log_spectral_complexity"], in_table=False,
    title="log spectral complexity",
    formula="log R_A, R_A = (prod_i ‖A_i‖_σ) · (sum_i (‖A_iᵀ − M_iᵀ‖_{2,1} / ‖A_i‖_σ)^{2/3})^{3/2} with reference "
            "matrices M_i = 0; ‖Aᵀ‖_{2,1} is the sum of the l2 norms of A's rows (a convolution's kernel rows, one "
            "per output channel, as Jiang et al. compute it)", paper=BARTLETT)
register_measure(
    "path_l2", lambda m: norms.path_l2(m.model, m.input_shape), title="l2 path norm", heading="path l2",
    formula="sqrt(sum over input-output paths of the product of the squared weights on the path): one forward "
            "pass, float64, eval mode, of the network with every weight squared and every bias zero on an "
            "all-ones input; a batch norm multiplies by s² (its scale folded into the neighbouring layer). Pooling "
            "stays as the network has it (max pooling makes it Jiang et al.'s proxy rather than a sum over all "
            "paths). None, with the reason, for a network with modules that cannot be squared so (attention and "
            "layer norm in `vit-tiny`, local response normalization in `alexnet-small`, torchvision's Inception "
            "V3, a user's module)", paper="Neyshabur, Salakhutdinov and Srebro 2015 (Path-SGD)")
MARGIN = ("margin of a training example = its logit for the label it was trained on (a random one, under random "
          "labels) minus the largest other logit, eval mode, float32")
register_measure(
    "margin_min", lambda m: _margins(m)["margin_min"], title="smallest margin", more_complex="lower",
    needs_data=True, in_table=False, formula=f"the smallest {MARGIN}", paper=BARTLETT)
register_measure(
    "margin_p10", lambda m: _margins(m)["margin_p10"], title="10th-percentile margin", more_complex="lower",
    needs_data=True, heading="margin p10",
    formula="the 10th percentile of the margins (linear interpolation; the robust choice of Bartlett et al.'s "
            "bound)", paper=BARTLETT)
register_measure(
    "margin_median", lambda m: _margins(m)["margin_median"], title="median margin", more_complex="lower",
    needs_data=True, in_table=False, formula="the median of the margins", paper=BARTLETT)
register_measure(
    "normalized_margin", _normalized_margin, title="normalized margin", more_complex="lower", needs_data=True,
    heading="norm margin",
    formula="`margin_p10` / (R_A · ‖X‖_F / sqrt(n)): divided by the spectral complexity and by the root mean square "
            "norm of the measured examples", paper=BARTLETT)
register_measure(
    "pac_bayes_sigma", lambda m: _flatness(m)["pac_bayes_sigma"], title="PAC-Bayes sharpness sigma",
    more_complex="lower", cost="moderate", needs_data=True, heading="pac-bayes sigma",
    formula=f"the largest σ such that isotropic Gaussian noise N(0, σ²) on every trained parameter lowers the "
            f"eval-mode training accuracy on the first {FLATNESS_EXAMPLES} measured examples by at most 0.1 from "
            "the unperturbed accuracy; noise averaged over 2 seeded draws (each a fixed direction scaled by σ), "
            "bisection over log σ in [1e-5, 10], 8 steps (to within a factor 1.055); a flatter minimum has a "
            "larger σ", paper=JIANG + ' ("pacbayes.flatness")')
register_measure(
    "pac_bayes_sigma_capped", lambda m: _flatness(m)["pac_bayes_sigma_capped"], kind="flag",
    title="PAC-Bayes sigma at its cap", more_complex="lower", cost="moderate", needs_data=True, in_table=False,
    formula="true when even σ = 10 drops the accuracy less than 0.1 (an accuracy near chance has little to lose)",
    paper=JIANG)
register_measure(
    "pac_bayes_bound_term", _bound_term, title="PAC-Bayes bound term", cost="moderate", needs_data=True,
    in_table=False,
    formula="‖w − w0‖² / (4σ²), the leading term of the PAC-Bayes bound with its prior at the initialization",
    paper=JIANG + ' ("pacbayes.init")')


# -- curvature (expensive: computed where asked for by name or with `all`) --------------------------------------

curvature = lazy_import(f"{__package__}.curvature")
SAGUN = "Sagun et al. 2017; Ghorbani et al. 2019; Yao et al. 2020 (PyHessian)"


def _hessian(m: MeasureInput) -> dict:
    def compute() -> dict:
        out = curvature.hessian_measures(m.model, m.x, m.y)
        m.facts["hessian"] = out["facts"]
        return out
    return m.shared("hessian", compute)


register_measure(
    "hessian_lambda_max", lambda m: _hessian(m)["lambda_max"], title="Hessian top eigenvalue", cost="expensive",
    needs_data=True, heading="hessian λmax", group="hessian",
    formula="the largest eigenvalue of the Hessian of the mean cross-entropy on the first 500 measured examples "
            "(eval mode, trained labels), by Lanczos (scipy eigsh, the 3 largest) on Hessian-vector products to "
            "relative tolerance 1e-3; the 3, their products and seconds under `hessian`", paper=SAGUN)
register_measure(
    "hessian_trace", lambda m: _hessian(m)["trace"], title="Hessian trace", cost="expensive", needs_data=True,
    heading="hessian trace", group="hessian",
    formula="the trace of the same Hessian by Hutch++ with 60 Hessian-vector products of seeded Rademacher "
            "vectors (Meyer et al. 2021); its spectral density (stochastic Lanczos quadrature, 40 steps with full "
            "reorthogonalization from one seeded vector: nodes and weights) under `hessian.density`", paper=SAGUN)


# -- sharpness (expensive): Keskar et al. 2017 and the adaptive worst case of Andriushchenko et al. 2023 ----------

sharpness = lazy_import(f"{__package__}.sharpness")
# The measures the sharpness artefact's verdicts read (the one place that names them outside this registry).
KESKAR_MEASURE = "keskar_sharpness"  # Keskar et al.'s phi, full space, eps = 1e-3
TOP_EIGENVALUE_MEASURE = "hessian_lambda_max"
KESKAR = 'Keskar et al. 2017, "On large-batch training for deep learning" (Metric 2.1)'


def _sharpness(m: MeasureInput) -> dict:
    def compute() -> dict:
        out = sharpness.sharpness_measures(m.model, m.x, m.y, batch_size=m.batch_size)
        m.facts["sharpness"] = out["facts"]
        return out
    return m.shared("sharpness", compute)


_BOX = ("100 (max f(x + A y) − f(x)) / (1 + f(x)) over the box |y_i| ≤ ε (|(A⁺x)_i| + 1), f the mean cross-entropy "
        "on the first 500 measured examples (eval mode, trained labels), maximized by L-BFGS-B from y = 0 for 10 "
        "iterations; f(x), the maximum and the evaluations under `sharpness`")
for _name, _space, _eps, _heading in (("keskar_sharpness", "full", 1e-3, "sharp"),
                                      ("keskar_sharpness_5e4", "full", 5e-4, "sharp 5e-4"),
                                      ("keskar_sharpness_subspace", "subspace", 1e-3, "sharp sub"),
                                      ("keskar_sharpness_subspace_5e4", "subspace", 5e-4, "sharp sub 5e-4")):
    register_measure(
        _name, lambda m, space=_space, eps=_eps: _sharpness(m)[space][eps], cost="expensive", needs_data=True,
        title=f"Keskar sharpness ({'full space' if _space == 'full' else 'random 100-dimensional subspace'}, "
              f"ε = {_eps:g})", heading=_heading, group="sharpness", in_table=_name == "keskar_sharpness",
        formula=_BOX + (", A = I (the full space)" if _space == "full" else
                        ", A: 100 seeded random unit-norm Gaussian columns") + f", ε = {_eps:g}", paper=KESKAR)
register_measure(
    "adaptive_sharpness", lambda m: _sharpness(m)["adaptive"], cost="expensive", needs_data=True,
    title="adaptive worst-case sharpness (ρ = 0.001)", heading="adaptive sharp", group="sharpness", in_table=False,
    formula="max f(x + δ) − f(x) over |δ_i| ≤ ρ |x_i|, ρ = 0.001, by the same L-BFGS-B (the paper: Auto-PGD), f as "
            "for Keskar's", paper="Andriushchenko et al. 2023, \"A modern look at the relationship between sharpness "
                                   "and generalization\"")
