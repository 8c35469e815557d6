"""What every run sets up in its process before it trains, whichever family: the CPU's float
mode and thread count, and the seeds of every random number generator."""

from __future__ import annotations

import random

import numpy as np
import torch


def configure_cpu(threads: int | None) -> None:
    """Flush denormal floats to zero, then set torch's intra-op thread count (if given).

    Late in training many float32 values fall below the smallest normal number (1.2e-38):
    Adam's first moments of rarely seen embedding rows decay by 0.9 at every step without a
    gradient, and exp of shifted log-probabilities (softmaxes over large vocabularies, the
    scaled HMM recursions) lands there. x86 CPUs take a slow microcode path for each operation
    on such a value; VSL-GG-Hier steps on Twitter 28,600 steps into training ran 2.67x faster
    with them flushed (results/benchmarks.md). Flushing treats them as zero, a change of less than
    1.2e-38 in absolute value. Call it before any parallel work: the workers of torch's thread
    pool take the mode of the thread that starts them."""
    torch.set_flush_denormal(True)
    if threads:
        torch.set_num_threads(threads)


def denormals_flushed() -> bool:
    """Whether this thread now flushes denormal floats (a denormal input reads as zero)."""
    return torch.tensor([1e-39]).mul(1.0).item() == 0.0


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
