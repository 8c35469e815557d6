"""vsl: sequence labeling with little labeled data.

Two model families share one encoder layer (:mod:`vsl.encoders`): the variational sequential
labelers of Chen et al. (2018) in :mod:`vsl.variational` (their BiGRU baseline in
:mod:`vsl.models`), and the HMMs for tag induction of Tran et al. (2016) in the sibling package
:mod:`hmm`.
"""

__version__ = "0.3.0"
