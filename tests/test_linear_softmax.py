import pytest
import torch

from vsl.linear_softmax import linear_cross_entropy


def reference(inputs, weight, bias, targets):
    return torch.nn.functional.cross_entropy(inputs @ weight.t() + bias, targets, reduction="none")


def test_values_and_gradients_match_cross_entropy_of_a_linear_layer():
    torch.manual_seed(0)
    inputs, weight, bias = torch.randn(13, 7), torch.randn(50, 7), torch.randn(50)
    targets = torch.randint(0, 50, (13,))
    upstream = torch.rand(13)  # per-row weights, as the ELBO's masks and scales give
    grads = []
    for loss_fn in (linear_cross_entropy, reference):
        leaves = [t.clone().requires_grad_() for t in (inputs, weight, bias)]
        loss = loss_fn(*leaves, targets)
        (loss * upstream).sum().backward()
        grads.append((loss.detach(), *(leaf.grad for leaf in leaves)))
    for ours, theirs in zip(*grads):
        torch.testing.assert_close(ours, theirs)


def test_gradcheck_in_double_precision():
    torch.manual_seed(1)
    leaves = [torch.randn(5, 3, dtype=torch.float64, requires_grad=True),
              torch.randn(9, 3, dtype=torch.float64, requires_grad=True),
              torch.randn(9, dtype=torch.float64, requires_grad=True)]
    targets = torch.tensor([0, 8, 3, 3, 1])
    assert torch.autograd.gradcheck(lambda *xs: linear_cross_entropy(*xs, targets), leaves)


def test_large_logits_stay_finite():
    inputs = torch.tensor([[1000.0], [-1000.0]])
    weight, bias = torch.tensor([[1.0], [-1.0], [0.5]]), torch.zeros(3)
    nll = linear_cross_entropy(inputs, weight, bias, torch.tensor([1, 1]))
    torch.testing.assert_close(nll, reference(inputs, weight, bias, torch.tensor([1, 1])))
    assert torch.isfinite(nll).all() and nll[0] > 1000  # the target's probability underflows; its nll does not


def test_shape_errors_are_reported():
    with pytest.raises(ValueError, match="targets"):
        linear_cross_entropy(torch.randn(4, 3), torch.randn(5, 3), torch.randn(5), torch.zeros(3, dtype=torch.long))


def test_bfloat16_matmuls_stay_close_to_float32():
    torch.manual_seed(2)
    inputs, weight, bias = torch.randn(64, 100), 0.3 * torch.randn(2000, 100), torch.randn(2000)
    targets = torch.randint(0, 2000, (64,))
    results = {}
    for precision in ("float32", "bfloat16"):
        leaves = [t.clone().requires_grad_() for t in (inputs, weight, bias)]
        loss = linear_cross_entropy(*leaves, targets, precision)
        loss.sum().backward()
        results[precision] = (loss.detach(), *(leaf.grad for leaf in leaves))
    exact, mixed = results["float32"], results["bfloat16"]
    assert all(t.dtype == torch.float32 for t in mixed)
    torch.testing.assert_close(mixed[0], exact[0], atol=0.05, rtol=0.01)  # logits from 8-bit-mantissa inputs
    for ours, theirs in zip(mixed[1:], exact[1:]):
        assert (ours - theirs).norm() < 0.01 * theirs.norm()
    assert not torch.equal(mixed[0], exact[0])  # the products did run in bfloat16


def test_unknown_precision_is_refused():
    with pytest.raises(ValueError, match="float16"):
        linear_cross_entropy(torch.randn(2, 3), torch.randn(4, 3), torch.randn(4), torch.zeros(2, dtype=torch.long),
                             "float16")


def test_without_bias_matches_a_linear_layer_without_bias_and_leaves_a_frozen_weight_alone():
    torch.manual_seed(2)
    inputs = torch.randn(6, 4, requires_grad=True)
    weight = torch.randn(20, 4)  # frozen: no gradient is asked for it
    targets = torch.randint(0, 20, (6,))
    ours = linear_cross_entropy(inputs, weight, None, targets)
    theirs = torch.nn.functional.cross_entropy(inputs @ weight.t(), targets, reduction="none")
    torch.testing.assert_close(ours, theirs)
    (grad,) = torch.autograd.grad(ours.sum(), inputs)
    (expected,) = torch.autograd.grad(theirs.sum(), inputs)
    torch.testing.assert_close(grad, expected)
    assert weight.grad is None
