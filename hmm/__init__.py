"""hmm: the HMM family for part-of-speech induction (Tran et al. 2016).

:mod:`hmm.inference` holds exact batched, masked inference (forward algorithm, forward-backward
marginals, Viterbi). The package imports vsl's encoders, never the reverse.
"""

__all__ = ["CategoricalHMM", "NeuralHMM", "inference"]


def __getattr__(name: str):
    """The models (:mod:`hmm.models`) and :mod:`hmm.inference`, imported on first use."""
    if name in ("CategoricalHMM", "NeuralHMM"):
        from hmm import models
        return getattr(models, name)
    if name == "inference":
        from hmm import inference
        return inference
    raise AttributeError(f"module 'hmm' has no attribute {name!r}")
