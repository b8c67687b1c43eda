"""Per-example scores from many networks, each trained on a random subset of the training set: which examples a
network fits only by memorizing them, and which the rest of the data predicts. In a partially corrupted run,
where which examples carry a corrupted label is known, they show where the random labels go: memorized one by
one (high memorization, low consistency), while the clean examples are predicted by the others.

- Feldman and Zhang (NeurIPS 2020, "What neural networks memorize and why: discovering the long tail via influence
  estimation"): memorization per training example (:func:`memorization`), influence of each training example on
  each test example (:func:`influence`) and the high-influence pairs (:func:`most_influential`).
- Jiang, Zhang, Talwar and Mozer (ICML 2021, "Characterizing structural regularities of labeled data in
  overparameterized models"): the consistency score, estimated on held-out networks (:func:`c_score`), and how well
  its lowest values single out the mislabeled examples (:func:`lowest_scores_precision_recall`).
- The subsets (:func:`subset_masks`: K seeded random subsets of 70% of the examples, Feldman and Zhang's choice).

Everything is numpy over the networks' results (which example each trained on; which examples each gets right):
nothing here trains a network. The estimates' precision grows with the number of networks K: the standard error
of a mean over the networks that left an example out is at most 1 / (2 sqrt(n_out)), about
1 / (2 sqrt(K (1 - fraction))), the larger term in a memorization or influence estimate.
"""

from .scores import FRACTION as FRACTION
from .scores import ConsistencyEstimate as ConsistencyEstimate
from .scores import InfluenceEstimate as InfluenceEstimate
from .scores import MemorizationEstimate as MemorizationEstimate
from .scores import PrecisionRecall as PrecisionRecall
from .scores import c_score as c_score
from .scores import influence as influence
from .scores import lowest_scores_precision_recall as lowest_scores_precision_recall
from .scores import memorization as memorization
from .scores import most_influential as most_influential
from .scores import subset_masks as subset_masks
