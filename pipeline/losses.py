"""HyCon's hybrid contrastive losses (Section 3.3, Eqs. 6-13) and Table 6's comparison losses (Eqs. 15-17).

Conventions shared by every loss here:

- `reps` maps the modality names ``'l'``, ``'a'``, ``'v'`` to ``[B, d]`` tensors, not yet normalised. Each
  loss L2-normalises them with a norm floor, x / max(||x||, NORM_FLOOR), and computes in float32 (safe
  under mixed precision). The similarity of two representations is the dot product of their normalised
  vectors. A zero vector stays zero (similarities 0, not NaN). A vanishing one (after the ReLU, one tiny
  active unit) would otherwise draw a gradient of order 1/||x|| (from the normalisation and from the
  scale-free ratio of Eqs. 7/10): measured at ||x|| = 1e-4, 795 against a median 0.007 for the other
  samples, enough to set the direction of the whole clipped update. With the floor, and the ratio weighted
  by the normalised anchor's norm (1 above the floor), it stays below 1 however small ||x|| gets.
- `classes` is a ``[B]`` integer (or bool) tensor of sentiment classes (binary in HyCon; see `class_labels`).
  A negative of an anchor is any sample of a *different* class.
- An *anchor* is one (sample, modality) pair, so a batch has ``3B`` anchors. Each loss reduces its
  per-anchor terms over the anchors that qualify with `reduction` (``loss.reduction``): ``'sum'`` is Eq. 13's
  "summed over all data samples of different modalities in a mini-batch" (the paper's; it grows with the
  batch against the MAE of Eq. 14), ``'mean'`` the expectation operator of Eqs. 6-12 (independent of B).
- An anchor with no positive in the batch is left out of the reduction (its Eq. 7/10 ratio and its
  refinement mean are undefined). If no anchor qualifies the loss is a zero that is still attached to the
  inputs' graph, so ``backward()`` works and gives zero gradients.
- The supervised ratio sum_pos / (sum_pos + sum_neg) is taken literally (no exp, temperature or log). The
  paper assumes similarities in [0, 1] (the model keeps its projections non-negative); there the ratio lies
  in [0, 1]. Where the denominator is exactly 0 (all similarities zero: zero or orthogonal vectors) the
  ratio is defined as 0, its limit from the non-negative side being bounded and the anchor carrying no
  signal; the gradient there is finite. With signed similarities (outside the paper's domain) the ratio is
  still the literal one and is unbounded.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import partial
from typing import Literal

import torch
import torch.nn.functional as F

from pipeline.choices import CONTRASTIVE_NAMES, REDUCTIONS, ZERO_CLASSES
from pipeline.errors import ConfigError

MODALITIES: tuple[str, str, str] = ("l", "a", "v")
# Smallest norm the L2 normalisation divides by (module docstring). Well below the norms the projections
# produce (a ReLU'd d = 50 vector of unit-scale activations has norm ~5), so only vanishing vectors feel it.
NORM_FLOOR = 0.1

PairKind = Literal["intra", "inter"]


@dataclass(frozen=True)
class _Pairs:
    """Anchor-by-candidate tables for one pair definition: row r is anchor (sample r % B, modality r // B).

    `sim` and `dist2` ([A, C]) are the similarity and squared Euclidean distance of the normalised anchor to
    each candidate; `pos` / `neg` ([A, C], bool) mark its positives and negatives; `norm` ([A]) is the
    normalised anchor's norm, min(||x|| / NORM_FLOOR, 1).
    """

    sim: torch.Tensor
    dist2: torch.Tensor
    pos: torch.Tensor
    neg: torch.Tensor
    norm: torch.Tensor


def class_labels(labels: torch.Tensor, zero_class: str = "nonneg") -> torch.Tensor:
    """Binary sentiment class of each label: 1 for positive, 0 for negative. A zero label goes to class 1
    with ``zero_class='nonneg'`` (default, as in the has0 convention) or class 0 with ``'negative'``."""
    if zero_class not in ZERO_CLASSES:
        raise ConfigError(f"loss.zero_class: {zero_class!r} is not one of {', '.join(ZERO_CLASSES)}")
    labels = torch.as_tensor(labels)
    positive = labels >= 0 if zero_class == "nonneg" else labels > 0
    return positive.long()


def scl_loss(reps: Mapping[str, torch.Tensor], alpha: float, reduction: str = "mean") -> torch.Tensor:
    """Semi-contrastive loss, Eq. 6: per anchor (i, m), 1/2 * sum over the two other modalities m' of
    (s(a_i^m, a_i^m') - alpha)^2, reduced (mean or sum) over all 3B anchors."""
    z = _normalised(reps)
    terms = []
    for m in MODALITIES:
        others = [(z[m] * z[o]).sum(-1) for o in MODALITIES if o != m]  # [B] each, same sample i
        terms.append(0.5 * sum((s - alpha) ** 2 for s in others))
    term = torch.cat(terms)
    return _reduce(term, torch.ones_like(term, dtype=torch.bool), reduction)


def iamcl_loss(
    reps: Mapping[str, torch.Tensor], classes: torch.Tensor, refine: bool = True, reduction: str = "mean"
) -> torch.Tensor:
    """Intra-modal contrastive loss, Eq. 7 (+ the refinement of Eq. 8 when `refine`, Eq. 9).

    Per anchor (i, m): positives are modality m of the other samples j != i of the same class, negatives
    modality m of the samples of the other class; term = -sum_pos s / (sum_pos s + sum_neg s)
    [+ 1/N sum_pos (s - 1)^2].
    """
    pairs = _build_pairs(reps, classes, "intra")
    return _ratio_loss(pairs, 1.0 if refine else None, reduction)


def iemcl_loss(
    reps: Mapping[str, torch.Tensor],
    classes: torch.Tensor,
    alpha: float,
    refine: bool = True,
    reduction: str = "mean",
) -> torch.Tensor:
    """Inter-modal contrastive loss, Eq. 10 (+ the refinement of Eq. 11 when `refine`, Eq. 12).

    Per anchor (i, m): positives are the two other modalities of the other samples j != i of the same class
    (2N), negatives the two other modalities of the samples of the other class (2M); the anchor's own sample
    never enters. term = -sum_pos s / (sum_pos s + sum_neg s) [+ 1/(2N) sum_pos (s - alpha)^2].
    """
    pairs = _build_pairs(reps, classes, "inter")
    return _ratio_loss(pairs, alpha if refine else None, reduction)


def classical_contrastive_loss(
    reps: Mapping[str, torch.Tensor],
    classes: torch.Tensor,
    pairs: PairKind = "intra",
    *,
    generator: torch.Generator | None = None,
    reduction: str = "mean",
) -> torch.Tensor:
    """Classical contrastive loss, Eq. 15, literal: -a.p / (a.p + sum_j a.n_j), with one positive drawn at
    random per anchor and all its negatives. Anchors lacking a positive or a negative are left out."""
    table = _build_pairs(reps, classes, pairs)
    one_pos = _one_hot(_random_choice(table.pos, generator), table.pos)
    term, _ = _ratio_terms(table, one_pos, target=None)
    return _reduce(term, _has_pos_and_neg(table), reduction)


def triplet_loss(
    reps: Mapping[str, torch.Tensor],
    classes: torch.Tensor,
    pairs: PairKind = "intra",
    *,
    margin: float = 1.0,
    hinge: bool = True,
    generator: torch.Generator | None = None,
    reduction: str = "mean",
) -> torch.Tensor:
    """Triplet loss, Eq. 16: ||a - p||^2 - ||a - n||^2 + margin with one random positive and one random
    negative per anchor (normalised vectors).

    The paper's extracted Eq. 16 lost its brackets; with ``hinge=True`` (default) the term is
    max(0, .) as in FaceNet [45], which the paper cites for it. Anchors lacking a positive or a negative are
    left out.
    """
    table = _build_pairs(reps, classes, pairs)
    p = _random_choice(table.pos, generator)
    n = _random_choice(table.neg, generator)
    return _triplet_from_indices(table, p, n, margin, hinge, reduction)


def hard_triplet_loss(
    reps: Mapping[str, torch.Tensor],
    classes: torch.Tensor,
    pairs: PairKind = "intra",
    *,
    margin: float = 1.0,
    hinge: bool = True,
    reduction: str = "mean",
) -> torch.Tensor:
    """Hard-triplet mining (Section 4.5.6): Eq. 16 with, per anchor, the hardest positive (lowest similarity
    among its positives) and the hardest negative (highest similarity among its negatives). Ties go to the
    lowest candidate index. Hinge and omitted anchors as in `triplet_loss`."""
    table = _build_pairs(reps, classes, pairs)
    p = torch.where(table.pos, table.sim, torch.inf).argmin(-1)
    n = torch.where(table.neg, table.sim, -torch.inf).argmax(-1)
    return _triplet_from_indices(table, p, n, margin, hinge, reduction)


def npair_loss(
    reps: Mapping[str, torch.Tensor],
    classes: torch.Tensor,
    pairs: PairKind = "intra",
    *,
    generator: torch.Generator | None = None,
    reduction: str = "mean",
) -> torch.Tensor:
    """N-pair loss, Eq. 17: log(1 + sum_j exp(a.n_j - a.p)) with one random positive and all negatives,
    computed as a logsumexp over [0, a.n_j - a.p] for stability. Anchors lacking a positive or a negative are
    left out."""
    table = _build_pairs(reps, classes, pairs)
    sp = table.sim.gather(-1, _random_choice(table.pos, generator)[:, None])  # [A, 1]
    diffs = torch.where(table.neg, table.sim - sp, -torch.inf)
    term = torch.logsumexp(torch.cat([torch.zeros_like(sp), diffs], dim=-1), dim=-1)
    return _reduce(term, _has_pos_and_neg(table), reduction)


COMPARISON_LOSSES: dict[str, Callable[..., torch.Tensor]] = {
    "triplet": triplet_loss,
    "hard_triplet": hard_triplet_loss,
    "npair": npair_loss,
    "contrastive": classical_contrastive_loss,
}


def hybrid_loss(
    reps: Mapping[str, torch.Tensor],
    classes: torch.Tensor,
    *,
    alpha: float,
    lambdas: tuple[float, float, float] = (1.0, 1.0, 1.0),
    refine: bool = True,
    contrastive: str = "hycon",
    generator: torch.Generator | None = None,
    reduction: str = "mean",
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Hybrid loss, Eq. 13: lambda1 * IAMCL + lambda2 * IEMCL + lambda3 * SCL, each term reduced over its
    anchors by `reduction` (``'sum'``: the paper's sum over all samples and modalities; ``'mean'``).

    ``contrastive='hycon'`` uses Eqs. 7-12; a comparison loss name (triplet, hard_triplet, npair,
    contrastive) replaces IAMCL with that loss on the intra-modal pairs and IEMCL with it on the inter-modal
    pairs (Section 4.5.6), SCL staying; ``'none'`` gives zero (the "W/O contrastive learning" ablation). A
    weight of 0 skips its term (the "W/O L_x" ablations). Returns the total and the unweighted value of each
    term under the keys ``iamcl``, ``iemcl``, ``scl`` (zero for a skipped term), so logs keep fixed columns.
    The parts are detached 0-d tensors on the inputs' device, not floats: converting here would force a host
    synchronisation per term on every training step; callers convert when they log.
    """
    if contrastive not in CONTRASTIVE_NAMES:
        raise ConfigError(f"loss.contrastive: {contrastive!r} is not one of {', '.join(CONTRASTIVE_NAMES)}")
    if len(lambdas) != 3 or any(not float(w) >= 0 for w in lambdas):
        raise ConfigError(
            f"loss.lambda_iamcl/lambda_iemcl/lambda_scl: need three weights >= 0, got {lambdas}"
        )
    _check_reduction(reduction)
    _check_reps(reps)
    total = _graph_zero(reps)
    parts = {key: total.detach() for key in ("iamcl", "iemcl", "scl")}
    if contrastive == "none":
        return total, parts
    if contrastive == "hycon":
        intra = partial(iamcl_loss, reps, classes, refine=refine, reduction=reduction)
        inter = partial(iemcl_loss, reps, classes, alpha, refine=refine, reduction=reduction)
    else:
        fn = COMPARISON_LOSSES[contrastive]
        extra = {"reduction": reduction}
        if contrastive != "hard_triplet":
            extra["generator"] = generator
        intra = partial(fn, reps, classes, "intra", **extra)
        inter = partial(fn, reps, classes, "inter", **extra)
    for key, weight, compute in (
        ("iamcl", lambdas[0], intra),
        ("iemcl", lambdas[1], inter),
        ("scl", lambdas[2], partial(scl_loss, reps, alpha, reduction)),
    ):
        if weight == 0:
            continue
        value = compute()
        parts[key] = value.detach()
        total = total + weight * value
    return total, parts


def _build_pairs(reps: Mapping[str, torch.Tensor], classes: torch.Tensor, kind: PairKind) -> _Pairs:
    """Pair tables over the 3B anchors of `reps` (normalised here): ``'intra'`` candidates are the B samples
    of the anchor's modality (IAMCL's pairs); ``'inter'`` candidates are the 2B samples of the two other
    modalities (IEMCL's pairs). Positives: same class, other sample; negatives: other class."""
    if kind not in ("intra", "inter"):
        raise ValueError(f"pair definition must be 'intra' or 'inter', got {kind!r}")
    z = _normalised(reps)
    classes = _checked_classes(classes, reps)
    same = classes[:, None] == classes[None, :]
    other_sample = ~torch.eye(len(classes), dtype=torch.bool, device=classes.device)
    pos, neg = same & other_sample, ~same
    sims, dists, poss, negs, norms = [], [], [], [], []
    for m in MODALITIES:
        cands = [m] if kind == "intra" else [o for o in MODALITIES if o != m]
        c = torch.cat([z[o] for o in cands])  # [C, d]
        s = z[m] @ c.T
        sims.append(s)
        # exactly 1 at or above the floor, so the literal ratio is untouched there
        norms.append((torch.linalg.vector_norm(reps[m].float(), dim=-1) / NORM_FLOOR).clamp(max=1))
        dists.append((z[m] ** 2).sum(-1)[:, None] + (c**2).sum(-1)[None, :] - 2 * s)
        poss.append(pos.repeat(1, len(cands)))
        negs.append(neg.repeat(1, len(cands)))
    return _Pairs(torch.cat(sims), torch.cat(dists), torch.cat(poss), torch.cat(negs), torch.cat(norms))


def _ratio_terms(pairs: _Pairs, pos: torch.Tensor, target: float | None) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-anchor -sum_pos s / (sum_pos s + sum_neg s) [+ mean over positives of (s - target)^2] over the
    `pos` columns and `pairs.neg`, shared by IAMCL, IEMCL and the classical contrastive loss; returns the
    terms and whether each anchor has a positive. A zero denominator gives ratio 0 (module docstring).

    The ratio does not change when the anchor is scaled, so its gradient grows as 1/||anchor||; it is
    weighted by the anchor's norm `pairs.norm` (1 above NORM_FLOOR: the literal ratio), which keeps the
    gradient of a vanishing anchor bounded and lets its contribution fade with it."""
    sim = pairs.sim
    sum_pos = (sim * pos).sum(-1)
    denom = sum_pos + (sim * pairs.neg).sum(-1)
    zero = denom == 0
    ratio = sum_pos / torch.where(zero, torch.ones_like(denom), denom)
    term = -torch.where(zero, torch.zeros_like(denom), ratio * pairs.norm)
    n_pos = pos.sum(-1)
    if target is not None:
        term = term + (((sim - target) ** 2) * pos).sum(-1) / n_pos.clamp(min=1)
    return term, n_pos > 0


def _ratio_loss(pairs: _Pairs, target: float | None, reduction: str) -> torch.Tensor:
    """IAMCL / IEMCL reduced over the anchors that have a positive."""
    term, valid = _ratio_terms(pairs, pairs.pos, target)
    return _reduce(term, valid, reduction)


def _triplet_from_indices(
    pairs: _Pairs, p: torch.Tensor, n: torch.Tensor, margin: float, hinge: bool, reduction: str
) -> torch.Tensor:
    """Eq. 16 for the chosen positive `p` and negative `n` column of each anchor."""
    term = pairs.dist2.gather(-1, p[:, None])[:, 0] - pairs.dist2.gather(-1, n[:, None])[:, 0] + margin
    if hinge:
        term = term.clamp(min=0)
    return _reduce(term, _has_pos_and_neg(pairs), reduction)


def _random_choice(mask: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    """One column per row drawn uniformly among the row's True entries (arbitrary for an all-False row, which
    the callers leave out); reproducible with a seeded `generator`."""
    device = generator.device if generator is not None else mask.device
    u = torch.rand(mask.shape, generator=generator, device=device).to(mask.device)
    return torch.where(mask, u, -1.0).argmax(-1)


def _one_hot(index: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """Bool mask with one True per row at `index`, restricted to rows where `like` has a True."""
    return F.one_hot(index, like.shape[-1]).bool() & like


def _has_pos_and_neg(pairs: _Pairs) -> torch.Tensor:
    """Anchors that have at least one positive and one negative (those the comparison losses use)."""
    return pairs.pos.any(-1) & pairs.neg.any(-1)


def _reduce(term: torch.Tensor, valid: torch.Tensor, reduction: str) -> torch.Tensor:
    """Sum or mean of `term` ([A]) over the `valid` anchors; a graph-attached 0 when none is valid."""
    _check_reduction(reduction)
    kept = torch.where(valid, term, torch.zeros_like(term)).sum()
    return kept if reduction == "sum" else kept / valid.sum().clamp(min=1)


def _check_reduction(reduction: str) -> None:
    if reduction not in REDUCTIONS:
        raise ConfigError(f"loss.reduction: {reduction!r} is not one of {', '.join(REDUCTIONS)}")


def _graph_zero(reps: Mapping[str, torch.Tensor]) -> torch.Tensor:
    """A float32 scalar 0 attached to every input, so that backward() on it works."""
    return sum(reps[m].float().sum() * 0.0 for m in MODALITIES)


def _normalised(reps: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Validate `reps` and L2-normalise each modality in float32, dividing by max(||x||, NORM_FLOOR)."""
    _check_reps(reps)
    out = {}
    for m in MODALITIES:
        x = reps[m].float()
        out[m] = x / torch.linalg.vector_norm(x, dim=-1, keepdim=True).clamp(min=NORM_FLOOR)
    return out


def _check_reps(reps: Mapping[str, torch.Tensor]) -> None:
    """`reps` must map exactly l, a, v to [B, d] tensors of one shape."""
    if set(reps) != set(MODALITIES):
        raise ValueError(f"reps must map exactly {MODALITIES} to tensors, got keys {sorted(reps)}")
    shapes = {m: tuple(reps[m].shape) for m in MODALITIES}
    if any(len(s) != 2 for s in shapes.values()) or len(set(shapes.values())) != 1:
        raise ValueError(f"reps must be [B, d] tensors of one shape, got {shapes}")


def _checked_classes(classes: torch.Tensor, reps: Mapping[str, torch.Tensor]) -> torch.Tensor:
    """`classes` as a [B] integer tensor on the representations' device."""
    batch = reps[MODALITIES[0]].shape[0]
    if classes.dtype.is_floating_point or classes.dtype.is_complex:
        raise ValueError(f"classes must be integer class ids (see class_labels), got dtype {classes.dtype}")
    if tuple(classes.shape) != (batch,):
        raise ValueError(f"classes must have shape [{batch}] to match reps, got {tuple(classes.shape)}")
    return classes.to(reps[MODALITIES[0]].device)
