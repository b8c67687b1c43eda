"""The paper's numbers as data: Table 1, Table 4 and the values read off Figure 1 (Zhang et al., ICLR 2017),
each with a trust tag, so that a table can say how sure each number is.

Tags:

- ``V``: checked against the paper's main text (Sections 1-6).
- ``S``: secondary but independent sources (slides showing the table, notes, re-implementations).
- ``A``: an arithmetic check (parameter counts reproduced exactly).
- ``M``: recollection of the paper, not checked against a copy.
- ``I``: an inference; the paper does not state the number.

Accuracies are percentages as the paper prints them; errors in Figure 1c are fractions, as its axis.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..models import model_info

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
    "alexnet-small": "AlexNet",
    "mlp-3x512": "MLP 3x512",
    "mlp-1x512": "MLP 1x512",
}

PARAMS_TAG = "A"  # Table 1's parameter counts, reproduced exactly from the architectures (Table 1)


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
        return model_info(self.model).paper_params

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


# --------------------------------------------------------------------------------------------------
# Table 2 (Appendix B): Inception V3 on ImageNet, top-1 and top-5 accuracy (%)
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Cell:
    """One number of Table 2 with its trust tag; ``best``: the best test accuracy during training, printed in
    parentheses (early stopping's reach), with its own tag."""

    value: float | None
    tag: str
    best: float | None = None
    best_tag: str | None = None

    def text(self, digits: int = 2) -> str:
        if self.value is None:
            return "—"
        out = f"{self.value:.{digits}f} [{self.tag}]"
        if self.best is not None:
            out += f" ({self.best:.{digits}f} [{self.best_tag or self.tag}])"
        return out


@dataclass(frozen=True)
class Table2Row:
    """One row of Table 2: the regularizers on or off, true or random labels, and the four accuracies."""

    augmentation: bool
    dropout: bool
    weight_decay: bool
    random_labels: bool
    top1_train: Cell
    top5_train: Cell
    top1_test: Cell
    top5_test: Cell

    def key(self) -> tuple:
        return (self.augmentation, self.dropout, self.weight_decay, self.random_labels)


def _t2(aug: bool, drop: bool, wd: bool, rl: bool, *cells: Cell) -> Table2Row:
    return Table2Row(aug, drop, wd, rl, *cells)


# Table 2 cell by cell with its tag ([M] cells are recollections, unconfirmed).
TABLE2: tuple[Table2Row, ...] = (
    _t2(True, True, True, False, Cell(92.18, "S"), Cell(99.21, "M"), Cell(77.84, "S"), Cell(93.92, "S")),
    _t2(True, False, False, False, Cell(92.33, "S"), Cell(99.17, "M"), Cell(72.95, "V"), Cell(90.43, "S")),
    _t2(False, False, True, False, Cell(90.60, "S"), Cell(100.0, "M"), Cell(67.18, "S", 72.57, "S"),
        Cell(86.44, "S", 91.31, "M")),
    _t2(False, False, False, False, Cell(99.53, "S"), Cell(100.0, "M"), Cell(59.80, "V", 63.16, "S"),
        Cell(80.38, "V", 84.49, "M")),
    _t2(False, True, True, True, Cell(91.18, "M"), Cell(97.95, "M"), Cell(0.09, "M"), Cell(0.49, "M")),
    _t2(False, False, True, True, Cell(87.81, "M"), Cell(96.15, "M"), Cell(0.12, "M"), Cell(0.50, "M")),
    _t2(False, False, False, True, Cell(95.20, "V"), Cell(99.14, "M"), Cell(0.11, "M"), Cell(0.56, "M")),
)
# The reference row of Table 2: AlexNet's ILSVRC 2012 top-5 test accuracy (Krizhevsky et al. 2012) [V].
TABLE2_ALEXNET_TOP5_TEST = Cell(83.6, "V")


def table2_row(augmentation: bool, dropout: bool, weight_decay: bool, random_labels: bool) -> Table2Row | None:
    """The paper's row of Table 2 for this setting, or None where Table 2 has none."""
    key = (bool(augmentation), bool(dropout), bool(weight_decay), bool(random_labels))
    for row in TABLE2:
        if row.key() == key:
            return row
    return None
