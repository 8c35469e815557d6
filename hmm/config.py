"""Settings of an HMM tag-induction run (``scripts/run_hmm.py``)."""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass

from hmm.models import EMISSIONS, TRANSITIONS
from hmm.train import LOSS_SCALES
from vsl.config import Settings, check_placement, require_positive
from vsl.encoders import LSTM_INITS
from vsl.errors import SettingError

MODELS = ("hmm", "nhmm")


@dataclass
class HmmConfig(Settings):
    """Every setting of a run. ``None`` picks the paper's value for the model: epochs 50 EM
    iterations (hmm) or 5 epochs (nhmm); hidden 512, or 128 with the conv emission."""

    data: str = "wsj"
    data_root: str | None = None
    format: str | None = None
    model: str = "hmm"
    emission: str = "embed"
    transition: str = "matrix"
    states: int = 45
    epochs: int | None = None
    hidden: int | None = None
    batch_size: int = 256
    eval_batch_size: int = 256
    max_length: int | None = 40
    max_sentences: int | None = None
    seed: int = 0
    # training text: the train split's words (unsupervised) plus, with unlabeled "auto", the
    # dataset's raw text (tweets), or a dataset name / raw-text file. semi_supervised: the VSL
    # split of the same seed instead, its labeled sentences clamped to their gold tags (one
    # state per tag) and its unlabeled ones (and the extra text) by their marginal likelihood
    unlabeled: str = "none"
    semi_supervised: bool = False
    labeled_fraction: float | None = None  # None: the dataset's paper setting
    unlabeled_fraction: float | None = None
    # EM
    restarts: int = 1
    smoothing: float = 1e-8
    # neural HMM
    lr: float = 1e-3
    max_updates_per_batch: int = 6
    tolerance: float = 1e-4
    grad_clip: float = 5.0
    # the authors' code's training tricks (its README: not used in the paper): one-epoch probes of
    # fresh initialisations, the best continued; the gradient of the summed -log p(x) over the
    # states ("state") rather than per token ("token"); annealed gradient noise of this size
    probes: int = 1
    loss_scale: str = "token"
    gradient_noise: float = 0.0
    noise_decay: float = 0.55
    checkpoint_every: int = 20  # batches between training checkpoints (last.pt) for --resume
    hidden_layers: int = 0  # extra ReLU layers in v_k and q (1: the authors' released code)
    lstm_layers: int = 3
    dropout: float = 0.5
    # Tran et al. sec. 8: dropout also on the top LSTM layer's output (nn.LSTM drops only between
    # layers), and LSTM weights N(0, 1/(n_in + hidden)), biases 0, forget-gate bias 1 ("paper";
    # "torch": PyTorch's default; "uniform": U(-1e-4, 1e-4), Tran et al.'s Table 3 ablation); a
    # batch's updates also stop when its likelihood got worse
    lstm_dropout_top: bool = True
    lstm_init: str = "paper"
    stop_when_worse: bool = True
    char_dim: int = 15
    max_word_chars: int = 15
    device: str = "cpu"
    threads: int | None = None

    #: What runs saved before these settings existed did (vsl 0.2.0 and earlier).
    SAVED_BEFORE: typing.ClassVar[dict] = {"lstm_dropout_top": False, "lstm_init": "torch", "stop_when_worse": False}

    def resolved(self) -> "HmmConfig":
        """Fill the model-dependent defaults and check the values."""
        if self.model not in MODELS:
            raise SettingError(f"model {self.model!r} is not one of {', '.join(MODELS)}")
        if self.emission not in EMISSIONS or self.transition not in TRANSITIONS:
            raise SettingError(f"emission must be one of {', '.join(EMISSIONS)} and transition one of "
                               f"{', '.join(TRANSITIONS)}; got {self.emission!r}, {self.transition!r}")
        epochs = self.epochs if self.epochs is not None else (50 if self.model == "hmm" else 5)
        hidden = self.hidden if self.hidden is not None else (128 if self.emission == "conv" else 512)
        require_positive(states=self.states, epochs=epochs, hidden=hidden, batch_size=self.batch_size,
                         eval_batch_size=self.eval_batch_size, restarts=self.restarts, lr=self.lr,
                         max_updates_per_batch=self.max_updates_per_batch, grad_clip=self.grad_clip,
                         checkpoint_every=self.checkpoint_every, lstm_layers=self.lstm_layers,
                         char_dim=self.char_dim, max_word_chars=self.max_word_chars, probes=self.probes)
        if self.lstm_init not in LSTM_INITS:
            raise SettingError(f"lstm_init must be one of {', '.join(LSTM_INITS)}; got {self.lstm_init!r}")
        if self.loss_scale not in LOSS_SCALES:
            raise SettingError(f"loss_scale must be one of {', '.join(LOSS_SCALES)}; got {self.loss_scale!r}")
        if self.gradient_noise < 0 or self.noise_decay < 0:
            raise SettingError(f"gradient_noise and noise_decay must be >= 0; got {self.gradient_noise}, "
                               f"{self.noise_decay}")
        if self.smoothing < 0 or self.tolerance < 0:
            raise SettingError(f"smoothing and tolerance must be >= 0; got {self.smoothing}, {self.tolerance}")
        if not 0 <= self.dropout < 1:
            raise SettingError(f"dropout must be in [0, 1); got {self.dropout}")
        if self.hidden_layers < 0:
            raise SettingError(f"hidden_layers must be >= 0; got {self.hidden_layers}")
        if self.max_sentences is not None and self.max_sentences < 1:
            raise SettingError(f"max_sentences must be positive; got {self.max_sentences}")
        check_placement(self.seed, self.threads, self.device)
        if self.semi_supervised and self.model != "nhmm":
            raise SettingError("semi-supervised training is for the neural HMM (--model nhmm)")
        max_length = self.max_length if self.max_length and self.max_length > 0 else None
        return dataclasses.replace(self, epochs=epochs, hidden=hidden, max_length=max_length)
