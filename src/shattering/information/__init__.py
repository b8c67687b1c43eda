"""Mutual-information estimators of the information-plane analysis of deep networks: I(X;T) and I(T;Y) for a
layer's representation T (N examples x D units) of the inputs X with labels Y, in bits (:mod:`.estimators`; the
pass over the squared distances that the pairwise ones share: :mod:`.pairwise`).

Shwartz-Ziv and Tishby (2017) plotted every layer at (I(X;T), I(T;Y)) through training and read a "fitting"
phase and a "compression" phase into it; Saxe et al. (ICLR 2018) showed that the compression comes with
saturating tanh units and not with ReLU, and that it depends on the estimator; Goldfeld et al. (ICML 2019)
showed that for a deterministic network I(X;T) is infinite (continuous X) or constant (H(X), discrete X), so
what the plots measure is how the estimator clusters T, not information. The estimators, pure functions of
arrays (numpy or torch):

- :func:`binned_information` (Shwartz-Ziv and Tishby): equal-width bins over the layer's own range, plug-in
  entropies. I(X;T) = H(binned T) saturates at log2 N (returned beside it as ``ceiling``) as soon as every
  example has its own bin pattern, which wide layers reach at any usable bin count; I(T;Y) then equals the
  labels' plug-in entropy H(Y) whatever the labels, random ones included. The values change with the number of
  bins and the range.
- :func:`kde_information_bounds` (Kolchinsky and Tracey 2017, as Saxe et al. used them): upper and lower bounds
  on I(X; T+Z) with Gaussian noise Z of variance ``noise_var`` (default 0.1), and the matching I(T+Z; Y)
  estimates. They describe T + Z, not T: the values fall as the noise variance grows, and reach log2 N when the
  examples are far apart on the noise's scale.
- :func:`knn_label_information` (Kraskov et al. 2004; Ross 2014): I(T;Y) alone by k nearest neighbours, with
  neither bins nor noise to choose; biased in many dimensions and by duplicated rows. There is no I(X;T)
  counterpart, for the reason Goldfeld et al. give.

With labels memorized at random (Zhang et al., ICLR 2017), I(T;Y) on the training set measures the fit to the
labels the network was given, not to any structure of X.
"""

from .estimators import BinnedInformation as BinnedInformation
from .estimators import KDEInformation as KDEInformation
from .estimators import binned_information as binned_information
from .estimators import kde_information_bounds as kde_information_bounds
from .estimators import knn_label_information as knn_label_information
from .estimators import pairwise_information as pairwise_information
