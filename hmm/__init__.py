"""hmm: the HMM family for part-of-speech induction (Tran et al. 2016).

:mod:`hmm.inference` holds exact batched, masked inference (forward algorithm, forward-backward
marginals, Viterbi). The package imports vsl's encoders, never the reverse.
"""
