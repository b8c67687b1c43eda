"""How a run shows its epochs while it trains (the epoch loop of Section 2.1, watched): a progress bar on a
terminal, and elsewhere (a log file, a pipe, a batch job) one plain line per logged epoch, never a carriage
return. Lines go through ``tqdm.write``, so under a sweep's bar they never share a line with it.
"""

from __future__ import annotations

import math
import sys

from tqdm.auto import tqdm

from ..formatting import on_terminal

LINES_PER_BUDGET = 50  # a long budget logs about this many epoch lines (a short one logs every epoch)


def log_every_epochs(epochs: int) -> int:
    """How often a run off a terminal logs an epoch line: every epoch for budgets up to 50 epochs, else every
    ``ceil(epochs / 50)`` epochs (the first and the last epoch are always logged)."""
    return max(1, math.ceil(epochs / LINES_PER_BUDGET))


def epoch_text(metrics: dict) -> str:
    """One epoch's numbers in a few words: training loss, training and test accuracy; for an epoch without a
    full evaluation, the running training loss and accuracy, named so."""
    if "train_acc" not in metrics:
        return (f"running loss {metrics['running_train_loss']:.3f} running train "
                f"{100 * metrics['running_train_acc']:.1f}% (not evaluated)")
    return (f"loss {metrics['train_loss']:.3f} train {100 * metrics['train_acc']:.1f}% "
            f"test {100 * metrics['test_acc']:.1f}%")


class EpochProgress:
    """The progress of one run (or one pack of runs) over its epoch budget. ``enabled`` False shows nothing;
    else a bar on a terminal, plain lines otherwise."""

    def __init__(self, desc: str, total: int, initial: int = 0, enabled: bool = True):
        self.desc, self.total = desc, total
        self.bar_on = enabled and on_terminal()
        self.lines_on = enabled and not self.bar_on
        self.every = log_every_epochs(total)
        self.bar = tqdm(total=total, initial=initial, disable=not self.bar_on, unit="epoch", leave=False,
                        desc=desc, file=sys.stderr)

    def update(self, epoch: int, text: str, last: bool = False) -> None:
        """Epoch ``epoch`` (1-based) ended with ``text``; ``last``: the run is over."""
        if self.bar_on:
            self.bar.update(1)
            self.bar.set_postfix_str(text)
        elif self.lines_on and (last or epoch == 1 or epoch % self.every == 0):
            tqdm.write(f"{self.desc}: epoch {epoch}/{self.total}: {text}", file=sys.stderr)

    def close(self) -> None:
        self.bar.close()

    def __enter__(self) -> EpochProgress:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
