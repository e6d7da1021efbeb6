"""Fusion of the three unimodal representations (Eq. 2 and Table 4): addition, concatenation, tensor, graph.

Every module maps ``(x_l, x_a, x_v)``, each ``[B, d]``, to a fused ``[B, out_dim]`` vector and exposes
``out_dim``; the regression head that follows belongs to the model.
"""

from __future__ import annotations

import torch
from torch import nn

from pipeline.choices import FUSIONS
from pipeline.errors import ConfigError

PAIRS: tuple[tuple[int, int], ...] = ((0, 1), (0, 2), (1, 2))  # (l, a), (l, v), (a, v)


class AddFusion(nn.Module):
    """Element-wise addition x_l + x_a + x_v, the paper's default (out_dim d)."""

    def __init__(self, d: int) -> None:
        super().__init__()
        self.out_dim = d

    def forward(self, x_l: torch.Tensor, x_a: torch.Tensor, x_v: torch.Tensor) -> torch.Tensor:
        return x_l + x_a + x_v


class ConcatFusion(nn.Module):
    """Concatenation [x_l; x_a; x_v] (out_dim 3d)."""

    def __init__(self, d: int) -> None:
        super().__init__()
        self.out_dim = 3 * d

    def forward(self, x_l: torch.Tensor, x_a: torch.Tensor, x_v: torch.Tensor) -> torch.Tensor:
        return torch.cat([x_l, x_a, x_v], dim=-1)


class TensorFusion(nn.Module):
    """TFN's tensor fusion: the flattened outer product of (x_l; 1), (x_a; 1), (x_v; 1), out_dim (d+1)^3.

    Entry (i, j, k) sits at ``i (d+1)^2 + j (d+1) + k``; index d is the appended 1, so (i, d, d) holds
    x_l[i], (i, j, d) the bimodal x_l[i] x_a[j], (i, j, k) the trimodal product and (d, d, d) the constant 1.
    """

    def __init__(self, d: int) -> None:
        super().__init__()
        self.out_dim = (d + 1) ** 3

    def forward(self, x_l: torch.Tensor, x_a: torch.Tensor, x_v: torch.Tensor) -> torch.Tensor:
        ones = x_l.new_ones(x_l.shape[0], 1)
        lang, audio, visual = (torch.cat([x, ones], dim=-1) for x in (x_l, x_a, x_v))
        return torch.einsum("bi,bj,bk->bijk", lang, audio, visual).reshape(x_l.shape[0], -1)


class GraphFusion(nn.Module):
    """Graph fusion in the spirit of Mai et al.'s graph fusion network (ARGF/GFN), out_dim 3d.

    Nodes: the three unimodal representations; three bimodal nodes b_ij = tanh(W_ij [x_i; x_j]); one
    trimodal node t = tanh(W_t [w_la b_la; w_lv b_lv; w_av b_av]) built from the weighted bimodal nodes.
    Node weights are learned and input-dependent: a softmax over the unimodal nodes of v_m . tanh(U_m x_m)
    (one scorer per modality), and over the bimodal nodes of v_b . b_ij. The output concatenates the three
    layers: [sum_m w_m x_m; sum_ij w_ij b_ij; t]. Simplified from GFN, whose weights come from pairwise
    node similarities and which stacks several such layers: here one scorer per layer and one layer.
    """

    def __init__(self, d: int) -> None:
        super().__init__()
        self.out_dim = 3 * d
        self.uni_score = nn.ModuleList(
            nn.Sequential(nn.Linear(d, d), nn.Tanh(), nn.Linear(d, 1, bias=False)) for _ in range(3)
        )
        self.bimodal = nn.ModuleList(nn.Linear(2 * d, d) for _ in PAIRS)
        self.bi_score = nn.Linear(d, 1, bias=False)
        self.trimodal = nn.Linear(3 * d, d)

    def forward(self, x_l: torch.Tensor, x_a: torch.Tensor, x_v: torch.Tensor) -> torch.Tensor:
        uni = torch.stack([x_l, x_a, x_v], dim=1)  # [B, 3, d]
        scores = [score(uni[:, m]) for m, score in enumerate(self.uni_score)]
        uni_w = torch.softmax(torch.stack(scores, dim=1), dim=1)  # [B, 3, 1]
        bi = torch.stack(
            [
                torch.tanh(layer(torch.cat([uni[:, i], uni[:, j]], dim=-1)))
                for layer, (i, j) in zip(self.bimodal, PAIRS, strict=True)
            ],
            dim=1,
        )  # [B, 3, d]
        bi_w = torch.softmax(self.bi_score(bi), dim=1)
        weighted_bi = bi_w * bi
        tri = torch.tanh(self.trimodal(weighted_bi.flatten(1)))
        return torch.cat([(uni_w * uni).sum(1), weighted_bi.sum(1), tri], dim=-1)


FUSION_MODULES: dict[str, type[nn.Module]] = {
    "add": AddFusion,
    "concat": ConcatFusion,
    "tensor": TensorFusion,
    "graph": GraphFusion,
}


def build_fusion(name: str, d: int) -> nn.Module:
    """The fusion module `name` (add, concat, tensor, graph) for d-dimensional unimodal representations."""
    if not isinstance(name, str) or name not in FUSION_MODULES:
        raise ConfigError(f"model.fusion: {name!r} is not one of {', '.join(FUSIONS)}")
    if isinstance(d, bool) or not isinstance(d, int) or d < 1:
        raise ConfigError(f"model.d: the representation size must be a positive integer, got {d!r}")
    return FUSION_MODULES[name](d)
