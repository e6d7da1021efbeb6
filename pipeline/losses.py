"""HyCon's hybrid contrastive losses (Section 3.3, Eqs. 6-13) and Table 6's comparison losses (Eqs. 15-17).

Conventions shared by every loss here:

- `reps` maps the modality names ``'l'``, ``'a'``, ``'v'`` to ``[B, d]`` tensors, not yet normalised. Each
  loss L2-normalises them (``F.normalize`` with its eps, so a zero vector stays zero and its similarities
  are 0, not NaN) and computes in float32 (safe under mixed precision). The similarity of two
  representations is the dot product of their normalised vectors.
- `classes` is a ``[B]`` integer (or bool) tensor of sentiment classes (binary in HyCon; see `class_labels`).
  A negative of an anchor is any sample of a *different* class.
- An *anchor* is one (sample, modality) pair, so a batch has ``3B`` anchors. Each loss returns the batch
  expectation: the mean of the per-anchor terms over the anchors that qualify. The paper's Eq. 13 says the
  hybrid loss is "summed over all data samples"; the expectation operator of Eqs. 6-12 is what we follow,
  so batch size does not rescale the loss against the MAE of Eq. 14.
- An anchor with no positive in the batch is left out of the expectation (its Eq. 7/10 ratio and its
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

from pipeline.errors import ConfigError

MODALITIES: tuple[str, str, str] = ("l", "a", "v")
COMPARISON_NAMES: tuple[str, ...] = ("triplet", "hard_triplet", "npair", "contrastive")
CONTRASTIVE_NAMES: tuple[str, ...] = ("hycon", "none", *COMPARISON_NAMES)
ZERO_CLASSES: tuple[str, ...] = ("nonneg", "negative")

PairKind = Literal["intra", "inter"]


@dataclass(frozen=True)
class _Pairs:
    """Anchor-by-candidate tables for one pair definition: row r is anchor (sample r % B, modality r // B).

    `sim` and `dist2` ([A, C]) are the similarity and squared Euclidean distance of the normalised anchor to
    each candidate; `pos` / `neg` ([A, C], bool) mark its positives and negatives.
    """

    sim: torch.Tensor
    dist2: torch.Tensor
    pos: torch.Tensor
    neg: torch.Tensor


def class_labels(labels: torch.Tensor, zero_class: str = "nonneg") -> torch.Tensor:
    """Binary sentiment class of each label: 1 for positive, 0 for negative. A zero label goes to class 1
    with ``zero_class='nonneg'`` (default, as in the has0 convention) or class 0 with ``'negative'``."""
    if zero_class not in ZERO_CLASSES:
        raise ConfigError(f"loss.zero_class: {zero_class!r} is not one of {', '.join(ZERO_CLASSES)}")
    labels = torch.as_tensor(labels)
    positive = labels >= 0 if zero_class == "nonneg" else labels > 0
    return positive.long()


def scl_loss(reps: Mapping[str, torch.Tensor], alpha: float) -> torch.Tensor:
    """Semi-contrastive loss, Eq. 6: per anchor (i, m), 1/2 * sum over the two other modalities m' of
    (s(a_i^m, a_i^m') - alpha)^2, averaged over all 3B anchors."""
    z = _normalised(reps)
    terms = []
    for m in MODALITIES:
        others = [(z[m] * z[o]).sum(-1) for o in MODALITIES if o != m]  # [B] each, same sample i
        terms.append(0.5 * sum((s - alpha) ** 2 for s in others))
    return torch.cat(terms).mean()


def iamcl_loss(reps: Mapping[str, torch.Tensor], classes: torch.Tensor, refine: bool = True) -> torch.Tensor:
    """Intra-modal contrastive loss, Eq. 7 (+ the refinement of Eq. 8 when `refine`, Eq. 9).

    Per anchor (i, m): positives are modality m of the other samples j != i of the same class, negatives
    modality m of the samples of the other class; term = -sum_pos s / (sum_pos s + sum_neg s)
    [+ 1/N sum_pos (s - 1)^2].
    """
    pairs = _build_pairs(_normalised(reps), _checked_classes(classes, reps), "intra")
    return _ratio_loss(pairs, target=1.0 if refine else None)


def iemcl_loss(
    reps: Mapping[str, torch.Tensor], classes: torch.Tensor, alpha: float, refine: bool = True
) -> torch.Tensor:
    """Inter-modal contrastive loss, Eq. 10 (+ the refinement of Eq. 11 when `refine`, Eq. 12).

    Per anchor (i, m): positives are the two other modalities of the other samples j != i of the same class
    (2N), negatives the two other modalities of the samples of the other class (2M); the anchor's own sample
    never enters. term = -sum_pos s / (sum_pos s + sum_neg s) [+ 1/(2N) sum_pos (s - alpha)^2].
    """
    pairs = _build_pairs(_normalised(reps), _checked_classes(classes, reps), "inter")
    return _ratio_loss(pairs, target=alpha if refine else None)


def classical_contrastive_loss(
    reps: Mapping[str, torch.Tensor],
    classes: torch.Tensor,
    pairs: PairKind = "intra",
    *,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Classical contrastive loss, Eq. 15, literal: -a.p / (a.p + sum_j a.n_j), with one positive drawn at
    random per anchor and all its negatives. Anchors lacking a positive or a negative are left out."""
    table = _build_pairs(_normalised(reps), _checked_classes(classes, reps), pairs)
    one_pos = _one_hot(_random_choice(table.pos, generator), table.pos)
    term, _ = _ratio_terms(table.sim, one_pos, table.neg, target=None)
    return _masked_mean(term, _has_pos_and_neg(table))


def triplet_loss(
    reps: Mapping[str, torch.Tensor],
    classes: torch.Tensor,
    pairs: PairKind = "intra",
    *,
    margin: float = 1.0,
    hinge: bool = True,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Triplet loss, Eq. 16: ||a - p||^2 - ||a - n||^2 + margin with one random positive and one random
    negative per anchor (normalised vectors).

    The paper's extracted Eq. 16 lost its brackets; with ``hinge=True`` (default) the term is
    max(0, .) as in FaceNet [45], which the paper cites for it. Anchors lacking a positive or a negative are
    left out.
    """
    table = _build_pairs(_normalised(reps), _checked_classes(classes, reps), pairs)
    p = _random_choice(table.pos, generator)
    n = _random_choice(table.neg, generator)
    return _triplet_from_indices(table, p, n, margin, hinge)


def hard_triplet_loss(
    reps: Mapping[str, torch.Tensor],
    classes: torch.Tensor,
    pairs: PairKind = "intra",
    *,
    margin: float = 1.0,
    hinge: bool = True,
) -> torch.Tensor:
    """Hard-triplet mining (Section 4.5.6): Eq. 16 with, per anchor, the hardest positive (lowest similarity
    among its positives) and the hardest negative (highest similarity among its negatives). Ties go to the
    lowest candidate index. Hinge and omitted anchors as in `triplet_loss`."""
    table = _build_pairs(_normalised(reps), _checked_classes(classes, reps), pairs)
    p = torch.where(table.pos, table.sim, torch.inf).argmin(-1)
    n = torch.where(table.neg, table.sim, -torch.inf).argmax(-1)
    return _triplet_from_indices(table, p, n, margin, hinge)


def npair_loss(
    reps: Mapping[str, torch.Tensor],
    classes: torch.Tensor,
    pairs: PairKind = "intra",
    *,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """N-pair loss, Eq. 17: log(1 + sum_j exp(a.n_j - a.p)) with one random positive and all negatives,
    computed as a logsumexp over [0, a.n_j - a.p] for stability. Anchors lacking a positive or a negative are
    left out."""
    table = _build_pairs(_normalised(reps), _checked_classes(classes, reps), pairs)
    sp = table.sim.gather(-1, _random_choice(table.pos, generator)[:, None])  # [A, 1]
    diffs = torch.where(table.neg, table.sim - sp, -torch.inf)
    term = torch.logsumexp(torch.cat([torch.zeros_like(sp), diffs], dim=-1), dim=-1)
    return _masked_mean(term, _has_pos_and_neg(table))


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
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Hybrid loss, Eq. 13: lambda1 * IAMCL + lambda2 * IEMCL + lambda3 * SCL.

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
    _check_reps(reps)
    total = _graph_zero(reps)
    parts = {key: total.detach() for key in ("iamcl", "iemcl", "scl")}
    if contrastive == "none":
        return total, parts
    if contrastive == "hycon":
        intra = partial(iamcl_loss, reps, classes, refine=refine)
        inter = partial(iemcl_loss, reps, classes, alpha, refine=refine)
    else:
        fn = COMPARISON_LOSSES[contrastive]
        extra = {} if contrastive == "hard_triplet" else {"generator": generator}
        intra = partial(fn, reps, classes, "intra", **extra)
        inter = partial(fn, reps, classes, "inter", **extra)
    for key, weight, compute in (
        ("iamcl", lambdas[0], intra),
        ("iemcl", lambdas[1], inter),
        ("scl", lambdas[2], partial(scl_loss, reps, alpha)),
    ):
        if weight == 0:
            continue
        value = compute()
        parts[key] = value.detach()
        total = total + weight * value
    return total, parts


def _build_pairs(z: Mapping[str, torch.Tensor], classes: torch.Tensor, kind: PairKind) -> _Pairs:
    """Pair tables over the 3B anchors for normalised `z`: ``'intra'`` candidates are the B samples of the
    anchor's modality (IAMCL's pairs); ``'inter'`` candidates are the 2B samples of the two other modalities
    (IEMCL's pairs). Positives: same class, other sample; negatives: other class."""
    if kind not in ("intra", "inter"):
        raise ValueError(f"pair definition must be 'intra' or 'inter', got {kind!r}")
    same = classes[:, None] == classes[None, :]
    other_sample = ~torch.eye(len(classes), dtype=torch.bool, device=classes.device)
    pos, neg = same & other_sample, ~same
    sims, dists, poss, negs = [], [], [], []
    for m in MODALITIES:
        cands = [m] if kind == "intra" else [o for o in MODALITIES if o != m]
        c = torch.cat([z[o] for o in cands])  # [C, d]
        s = z[m] @ c.T
        sims.append(s)
        dists.append((z[m] ** 2).sum(-1)[:, None] + (c**2).sum(-1)[None, :] - 2 * s)
        poss.append(pos.repeat(1, len(cands)))
        negs.append(neg.repeat(1, len(cands)))
    return _Pairs(torch.cat(sims), torch.cat(dists), torch.cat(poss), torch.cat(negs))


def _ratio_terms(
    sim: torch.Tensor, pos: torch.Tensor, neg: torch.Tensor, target: float | None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-anchor -sum_pos s / (sum_pos s + sum_neg s) [+ mean over positives of (s - target)^2], shared by
    IAMCL, IEMCL and the classical contrastive loss; returns the terms and whether each anchor has a
    positive. A zero denominator gives ratio 0 (see the module docstring)."""
    sum_pos = (sim * pos).sum(-1)
    denom = sum_pos + (sim * neg).sum(-1)
    zero = denom == 0
    term = -torch.where(
        zero, torch.zeros_like(denom), sum_pos / torch.where(zero, torch.ones_like(denom), denom)
    )
    n_pos = pos.sum(-1)
    if target is not None:
        term = term + (((sim - target) ** 2) * pos).sum(-1) / n_pos.clamp(min=1)
    return term, n_pos > 0


def _ratio_loss(pairs: _Pairs, target: float | None) -> torch.Tensor:
    """IAMCL / IEMCL expectation over the anchors that have a positive."""
    term, valid = _ratio_terms(pairs.sim, pairs.pos, pairs.neg, target)
    return _masked_mean(term, valid)


def _triplet_from_indices(
    pairs: _Pairs, p: torch.Tensor, n: torch.Tensor, margin: float, hinge: bool
) -> torch.Tensor:
    """Eq. 16 for the chosen positive `p` and negative `n` column of each anchor."""
    term = pairs.dist2.gather(-1, p[:, None])[:, 0] - pairs.dist2.gather(-1, n[:, None])[:, 0] + margin
    if hinge:
        term = term.clamp(min=0)
    return _masked_mean(term, _has_pos_and_neg(pairs))


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


def _masked_mean(term: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """Mean of `term` over the `valid` anchors; a graph-attached 0 when none is valid."""
    kept = torch.where(valid, term, torch.zeros_like(term))
    return kept.sum() / valid.sum().clamp(min=1)


def _graph_zero(reps: Mapping[str, torch.Tensor]) -> torch.Tensor:
    """A float32 scalar 0 attached to every input, so that backward() on it works."""
    return sum(reps[m].float().sum() * 0.0 for m in MODALITIES)


def _normalised(reps: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Validate `reps` and L2-normalise each modality in float32 (zero vectors stay zero)."""
    _check_reps(reps)
    return {m: F.normalize(reps[m].float(), dim=-1) for m in MODALITIES}


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
