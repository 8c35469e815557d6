"""A linear layer followed by a softmax cross-entropy, as one autograd function.

The decoder's word softmax (Chen et al. 2018, sec. 3: -log p(x_t | z_t), a softmax over the
decoded vocabulary) dominates a VSL training step. Written as ``cross_entropy(linear(x))`` it
stores the logits and their log-softmax, materialises a dense zero gradient for the
negative log-likelihood and recomputes the softmax in the backward pass. Here the forward pass
turns the logits into their exponentials in place and keeps them; the backward pass is the
closed form d nll_n / d logit_nv = softmax_nv - [v = target_n], scaled by the incoming
gradient, followed by the two matrix products of the linear layer.

``precision="bfloat16"`` runs those three matrix products on bfloat16 copies of their operands
with float32 accumulation (mixed precision: float32 weights, logits, softmax and gradients; the
products' inputs rounded to 8 significant bits). On CPUs with native bfloat16 instructions
(AVX512-BF16, AMX) and on GPUs these products are several times faster than in float32.
"""

from __future__ import annotations

import torch

PRECISIONS = {"float32": None, "bfloat16": torch.bfloat16}  # None: the operands' own dtype
ROW_BLOCK = 64  # low-precision products run on row counts rounded up to this: oneDNN compiles few shapes


def _operand(t: torch.Tensor, dtype: torch.dtype | None) -> torch.Tensor:
    """``t`` as a matmul operand: itself, or a ``dtype`` copy with its rows zero-padded to a
    multiple of ROW_BLOCK (a token count that changes every step would otherwise compile a new
    kernel at almost every step)."""
    if dtype is None:
        return t
    padded = t.new_zeros((-(-t.shape[0] // ROW_BLOCK) * ROW_BLOCK, *t.shape[1:]), dtype=dtype)
    padded[: t.shape[0]] = t
    return padded


class _LinearCrossEntropy(torch.autograd.Function):
    @staticmethod
    def forward(ctx, inputs: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor,
                targets: torch.Tensor, dtype: torch.dtype | None) -> torch.Tensor:
        rows = inputs.shape[0]
        inputs_op, weight_op = _operand(inputs, dtype), weight if dtype is None else weight.to(dtype)
        logits = (inputs_op @ weight_op.t())[:rows].to(inputs.dtype)
        if bias is not None:
            logits.add_(bias)
        logits.sub_(logits.amax(dim=1, keepdim=True))
        picked = logits.gather(1, targets.unsqueeze(1)).squeeze(1)
        exps = logits.exp_()  # exp(logit - max), the softmax numerators
        totals = exps.sum(dim=1)
        ctx.save_for_backward(inputs_op, weight_op, exps, totals, targets)
        ctx.dtype = dtype
        return totals.log() - picked

    @staticmethod
    def backward(ctx, grad_nll: torch.Tensor):
        inputs_op, weight_op, exps, totals, targets = ctx.saved_tensors
        grad_logits = exps * (grad_nll / totals).unsqueeze(1)  # softmax, scaled by the incoming gradient
        grad_logits.scatter_add_(1, targets.unsqueeze(1), -grad_nll.unsqueeze(1))
        grad_op = _operand(grad_logits, ctx.dtype)
        grad_inputs = grad_weight = grad_bias = None
        if ctx.needs_input_grad[0]:
            grad_inputs = (grad_op @ weight_op)[: exps.shape[0]].to(exps.dtype)
        if ctx.needs_input_grad[1]:
            grad_weight = (grad_op.t() @ inputs_op).to(exps.dtype)  # padded rows are zero in both
        if ctx.needs_input_grad[2]:  # False when there is no bias
            grad_bias = grad_logits.sum(0)
        return grad_inputs, grad_weight, grad_bias, None, None


def linear_cross_entropy(inputs: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None,
                         targets: torch.Tensor, precision: str = "float32") -> torch.Tensor:
    """``cross_entropy(inputs @ weight.T + bias, targets, reduction="none")``: the negative
    log-likelihood of each row's target, (N,) for float32 inputs (N, D), weight (V, D), bias
    (V,) or None, targets (N,) int64 in [0, V); ``precision`` of the matrix products: "float32" or
    "bfloat16"."""
    if inputs.dim() != 2 or targets.shape != inputs.shape[:1]:
        raise ValueError(f"inputs must be (N, D) and targets (N,); got {tuple(inputs.shape)} and {tuple(targets.shape)}")
    if precision not in PRECISIONS:
        raise ValueError(f"precision {precision!r} is not one of {', '.join(PRECISIONS)}")
    return _LinearCrossEntropy.apply(inputs, weight, bias, targets, PRECISIONS[precision])
