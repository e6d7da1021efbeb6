"""Fusion modules: shapes, add / concat values, positions in the tensor-fusion product, graph fusion."""

from __future__ import annotations

import pytest
import torch

from pipeline.choices import FUSIONS
from pipeline.errors import ConfigError
from pipeline.models.fusion import build_fusion

X_L = torch.tensor([[1.0, 2.0], [0.5, -1.0]])
X_A = torch.tensor([[3.0, 5.0], [2.0, 0.0]])
X_V = torch.tensor([[7.0, 11.0], [-1.0, 4.0]])


@pytest.mark.parametrize(("name", "out_dim"), [("add", 4), ("concat", 12), ("tensor", 125), ("graph", 12)])
def test_shapes_and_out_dim(name: str, out_dim: int) -> None:
    fusion = build_fusion(name, 4)
    assert fusion.out_dim == out_dim
    x = torch.randn(3, 3, 4, generator=torch.Generator().manual_seed(0))
    assert fusion(x[0], x[1], x[2]).shape == (3, out_dim)


def test_add_and_concat_values() -> None:
    assert torch.equal(build_fusion("add", 2)(X_L, X_A, X_V), torch.tensor([[11.0, 18.0], [1.5, 3.0]]))
    expected = torch.tensor([[1.0, 2.0, 3.0, 5.0, 7.0, 11.0], [0.5, -1.0, 2.0, 0.0, -1.0, 4.0]])
    assert torch.equal(build_fusion("concat", 2)(X_L, X_A, X_V), expected)


def test_tensor_fusion_positions() -> None:
    # d = 2: (x; 1) has 3 entries, entry (i, j, k) at 9 i + 3 j + k; index 2 is the appended 1.
    # sample 0: l = (1, 2, 1), a = (3, 5, 1), v = (7, 11, 1)
    z = build_fusion("tensor", 2)(X_L, X_A, X_V)[0]
    assert z.shape == (27,)
    assert z[9 * 2 + 3 * 2 + 2] == 1.0  # constant
    assert z[9 * 1 + 3 * 2 + 2] == 2.0  # unimodal l[1]
    assert z[9 * 2 + 3 * 1 + 2] == 5.0  # unimodal a[1]
    assert z[9 * 2 + 3 * 2 + 0] == 7.0  # unimodal v[0]
    assert z[9 * 0 + 3 * 1 + 2] == 1.0 * 5.0  # bimodal l[0] a[1]
    assert z[9 * 1 + 3 * 2 + 1] == 2.0 * 11.0  # bimodal l[1] v[1]
    assert z[9 * 2 + 3 * 0 + 1] == 3.0 * 11.0  # bimodal a[0] v[1]
    assert z[9 * 1 + 3 * 1 + 0] == 2.0 * 5.0 * 7.0  # trimodal l[1] a[1] v[0]
    # and the whole vector is the outer product, with sample 1 independent of sample 0
    l1, a1, v1 = (torch.cat([x[1], torch.ones(1)]) for x in (X_L, X_A, X_V))
    expected = (l1[:, None, None] * a1[None, :, None] * v1[None, None, :]).flatten()
    assert torch.equal(build_fusion("tensor", 2)(X_L, X_A, X_V)[1], expected)


def test_graph_fusion_gradient_reaches_every_input() -> None:
    torch.manual_seed(0)
    fusion = build_fusion("graph", 4)
    x = [torch.randn(5, 4, requires_grad=True) for _ in range(3)]
    fusion(*x).pow(2).sum().backward()
    for tensor in x:
        assert tensor.grad is not None and tensor.grad.abs().sum() > 0
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in fusion.parameters())


def test_graph_fusion_node_weights_depend_on_input() -> None:
    # The unimodal block of the output is sum_m w_m x_m with softmax weights: with x_l = x_a = x_v it is
    # that vector itself; with d = 3 and generic inputs the weights can be solved for exactly, and they
    # must be a convex combination that changes from sample to sample.
    torch.manual_seed(1)
    fusion = build_fusion("graph", 3).double()
    x = torch.randn(4, 3, dtype=torch.float64)
    assert torch.allclose(fusion(x, x, x)[:, :3], x)
    y, z = torch.randn(4, 3, dtype=torch.float64), torch.randn(4, 3, dtype=torch.float64)
    uni = fusion(x, y, z)[:, :3]
    weights = torch.linalg.solve(torch.stack([x, y, z], dim=2), uni)  # [4, 3]: per-sample w_l, w_a, w_v
    assert torch.allclose(weights.sum(1), torch.ones(4, dtype=torch.float64)) and (weights > 0).all()
    assert (weights.max(0).values - weights.min(0).values).min() > 1e-3
    # the scorers are modality-specific: exchanging the modalities changes the weights
    assert not torch.allclose(fusion(z, x, y)[:, :3], uni)


def test_unknown_name_or_bad_size() -> None:
    assert FUSIONS == ("add", "concat", "tensor", "graph")
    with pytest.raises(ConfigError, match=r"model\.fusion.*'attention'.*add, concat, tensor, graph"):
        build_fusion("attention", 4)
    with pytest.raises(ConfigError, match=r"model\.d"):
        build_fusion("add", 0)
