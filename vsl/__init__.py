"""vsl: sequence labeling with little labeled data.

``vsl.train(config, out_dir)`` trains a run folder; ``vsl.load_tagger(folder)`` loads one of
either family as a :class:`~vsl.api.Tagger` with ``tag`` and ``evaluate``.

Two model families share one encoder layer (:mod:`vsl.encoders`): the variational sequential
labelers of Chen et al. (2018) in :mod:`vsl.variational` (their BiGRU baseline in
:mod:`vsl.models`), and the HMMs for tag induction of Tran et al. (2016) in the sibling package
:mod:`hmm`.
"""

__version__ = "0.3.0"

__all__ = ["Tagger", "load_tagger", "train", "__version__"]


def __getattr__(name: str):
    """The public API (:mod:`vsl.api`), imported on first use so ``import vsl`` stays light."""
    if name in ("Tagger", "load_tagger", "train"):
        from vsl import api
        return getattr(api, name)
    raise AttributeError(f"module 'vsl' has no attribute {name!r}")
