"""The paper's numbers as data: Table 1, Table 4 and the values read off Figure 1 (Zhang et al., ICLR 2017),
each with the trust tag of ``spec.md`` section 0 so that a table can say how sure each number is.

Tags:

- ``V``: checked against the paper's main text (Sections 1-6).
- ``S``: secondary but independent sources (slides showing the table, notes, re-implementations).
- ``A``: arithmetic done while writing the spec (parameter counts reproduced exactly).
- ``M``: recollection of the paper, not checked against a copy.
- ``I``: an inference; the paper does not state the number.

Accuracies are percentages as the paper prints them; errors in Figure 1c are fractions, as its axis.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..models import PAPER_PARAMS

TRUST = {
    "V": "checked against the paper's main text",
    "V-quote": "Appendix A wording, quoted verbatim by independent sources",
    "S": "secondary but independent sources (slides, notes, re-implementations)",
    "A": "arithmetic check (reproduced exactly)",
    "M": "recollection of the paper, not checked against a copy",
    "I": "inference; the paper does not state it",
}

MODEL_TITLES = {
    "inception-small": "Inception",
    "inception-small-nobn": "Inception w/o BatchNorm",
    "alexnet-small": "Alexnet",
    "mlp-3x512": "MLP 3x512",
    "mlp-1x512": "MLP 1x512",
}

PARAMS_TAG = "A"  # Table 1's parameter counts, reproduced exactly from the architectures (spec section 3)


@dataclass(frozen=True)
class Table1Row:
    """One row of Table 1 (CIFAR-10): train and test accuracy in percent."""

    model: str  # shattering's model name
    random_crop: bool
    weight_decay: bool
    random_labels: bool  # the shaded "fitting random labels" rows (test accuracy on the true test labels)
    train_acc: float
    test_acc: float
    tag: str = "S"

    @property
    def params(self) -> int:
        return PAPER_PARAMS[self.model]

    def key(self) -> tuple:
        return (self.model, self.random_crop, self.weight_decay, self.random_labels)


def _t1(model: str, crop: bool, wd: bool, train: float, test: float, random_labels: bool = False) -> Table1Row:
    return Table1Row(model, crop, wd, random_labels, train, test)


# Table 1, all 19 rows in the paper's order [S: cells corroborated by three independent copies].
TABLE1: tuple[Table1Row, ...] = (
    _t1("inception-small", True, True, 100.0, 89.05),
    _t1("inception-small", True, False, 100.0, 89.31),
    _t1("inception-small", False, True, 100.0, 86.03),
    _t1("inception-small", False, False, 100.0, 85.75),
    _t1("inception-small", False, False, 100.0, 9.78, random_labels=True),
    _t1("inception-small-nobn", False, True, 100.0, 83.00),
    _t1("inception-small-nobn", False, False, 100.0, 82.00),
    _t1("inception-small-nobn", False, False, 100.0, 10.12, random_labels=True),
    _t1("alexnet-small", True, True, 99.90, 81.22),
    _t1("alexnet-small", True, False, 99.82, 79.66),
    _t1("alexnet-small", False, True, 100.0, 77.36),
    _t1("alexnet-small", False, False, 100.0, 76.07),
    _t1("alexnet-small", False, False, 99.82, 9.86, random_labels=True),
    _t1("mlp-3x512", False, True, 100.0, 53.35),
    _t1("mlp-3x512", False, False, 100.0, 52.39),
    _t1("mlp-3x512", False, False, 100.0, 10.48, random_labels=True),
    _t1("mlp-1x512", False, True, 99.80, 50.39),
    _t1("mlp-1x512", False, False, 100.0, 50.51),
    _t1("mlp-1x512", False, False, 99.34, 10.61, random_labels=True),
)


@dataclass(frozen=True)
class Table4Row:
    """One row of Table 4 (Appendix E): training accuracy (percent) on random labels with a regularizer."""

    model: str
    regularizer: str  # "weight decay", "random cropping" or "augmentation"
    train_acc: float | None  # None where the paper reports no number
    text: str  # the cell as the paper prints it
    tag: str = "S"

    def key(self) -> tuple:
        return (self.model, self.regularizer)


# Table 4 [S: two independent secondary sources].
TABLE4: tuple[Table4Row, ...] = (
    Table4Row("inception-small", "weight decay", 100.0, "100%"),
    Table4Row("inception-small", "random cropping", 99.93, "99.93%"),
    Table4Row("inception-small", "augmentation", 99.28, "99.28%"),
    Table4Row("alexnet-small", "weight decay", None, "fails to converge"),
    Table4Row("mlp-3x512", "weight decay", 100.0, "100%"),
    Table4Row("mlp-1x512", "weight decay", 99.21, "99.21%"),
)

TABLE4_REGULARIZERS = {
    "weight decay": "weight decay (the model's default coefficient)",
    "random cropping": "random cropping (lr decay 0.999, longer training)",
    "augmentation": "augmentation: random left-right flip + rotation up to 25 degrees (lr decay 0.999)",
}


@dataclass(frozen=True)
class Approx:
    """A number read off a figure or derived from the text: ``value`` (or a ``low``..``high`` range)."""

    value: float | None
    tag: str
    source: str
    low: float | None = None
    high: float | None = None


# Figure 1c: test error at p = 0 is about 1 - Table 1's unregularized test accuracy [I], and every curve
# converges to chance, 90% error, as p -> 1 [V].
FIG1C_P0 = {
    "inception-small": Approx(0.14, "I", "1 - Table 1's 85.75% (no crop, no weight decay)"),
    "alexnet-small": Approx(0.24, "I", "1 - Table 1's 76.07%"),
    "mlp-1x512": Approx(0.49, "I", "1 - Table 1's 50.51%"),
}
FIG1C_P1 = Approx(0.90, "V", "test error converges to 90% (chance on CIFAR-10) as p -> 1")

# Figure 1b: time to overfit at p = 1 relative to p = 0: "a small constant factor" [V]; secondary summaries
# read about 1.5x to 3.5x off the figure [S, approximate].
FIG1B_P1 = Approx(2.5, "S", "about 1.5x to 3.5x at p = 1, read off the figure by secondary summaries",
                  low=1.5, high=3.5)
FIG1B_CLAIM = Approx(None, "V", "training time increases only by a small constant factor (introduction)")


def table1_row(model: str, random_crop: bool, weight_decay: bool, random_labels: bool) -> Table1Row | None:
    """The paper's row of Table 1 for this setting, or None where Table 1 has none."""
    for row in TABLE1:
        if row.key() == (model, bool(random_crop), bool(weight_decay), bool(random_labels)):
            return row
    return None


def table4_row(model: str, regularizer: str) -> Table4Row | None:
    for row in TABLE4:
        if row.key() == (model, regularizer):
            return row
    return None


def tagged(value: float | None, tag: str, digits: int = 2) -> str:
    """``89.05 [S]``; a missing value as an em dash."""
    if value is None:
        return "—"
    return f"{value:.{digits}f} [{tag}]"
