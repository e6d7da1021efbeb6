"""HyCon's losses against hand-computed values, a literal loop-based reference, and degenerate batches.

Hand examples use 2-d vectors whose normalised dot products are simple: (1, 0), (0, 1), (3, 4)/5 = (.6, .8)
and (4, 3)/5 = (.8, .6), so e.g. (1,0).(.6,.8) = .6, (.6,.8).(.8,.6) = .96, and an un-normalised input
such as (0, 2) checks that the losses normalise.
"""

from __future__ import annotations

import itertools
import math
from functools import partial

import pytest
import torch

import pipeline.losses
from pipeline.errors import ConfigError
from pipeline.losses import (
    class_labels,
    classical_contrastive_loss,
    hard_triplet_loss,
    hybrid_loss,
    iamcl_loss,
    iemcl_loss,
    npair_loss,
    scl_loss,
    triplet_loss,
)

M = ("l", "a", "v")


def tensors(**rows: list[list[float]]) -> dict[str, torch.Tensor]:
    """reps from nested lists, requiring grad."""
    return {m: torch.tensor(v, dtype=torch.float32, requires_grad=True) for m, v in rows.items()}


def same_in_all(rows: list[list[float]]) -> dict[str, torch.Tensor]:
    """The same vectors in every modality (intra-modal hand checks then equal one modality's mean)."""
    return tensors(l=rows, a=rows, v=rows)


# The hand batch of the IAMCL / IEMCL checks: B = 3, classes [1, 1, 0]; normalised vectors
#   l: L0 = (1,0)  L1 = (.6,.8)  L2 = (0,1)
#   a: A0 = (0,1)  A1 = (0,1)    A2 = (.8,.6)
#   v: V0 = (1,0)  V1 = (0,1)    V2 = (0,0)   (a zero vector: every similarity with it is 0)
HAND = dict(
    l=[[1, 0], [3, 4], [0, 1]],
    a=[[0, 1], [0, 2], [4, 3]],
    v=[[2, 0], [0, 1], [0, 0]],
)
HAND_CLASSES = torch.tensor([1, 1, 0])


# ---------------------------------------------------------------- hand values


@pytest.mark.parametrize(
    ("alpha", "expected"),
    [
        # sample 0: l.a = 0, l.v = .6, a.v = .8; sample 1: l.a = .96, l.v = 1, a.v = .96.
        # Each anchor takes half the squares of its two pairs, so each pair counts once per sample:
        # alpha .8: s0 = .64 + .04 + 0 = .68; s1 = .0256 + .04 + .0256 = .0912; mean over 6 anchors.
        (0.8, (0.68 + 0.0912) / 6),
        # alpha 1 (the "W/O modality margin" ablation): s0 = 1 + .16 + .04; s1 = .0016 + 0 + .0016.
        (1.0, (1.2 + 0.0032) / 6),
    ],
)
def test_scl_hand_value(alpha: float, expected: float) -> None:
    reps = tensors(l=[[1, 0], [3, 4]], a=[[0, 2], [4, 3]], v=[[3, 4], [6, 8]])
    assert scl_loss(reps, alpha).item() == pytest.approx(expected, abs=1e-6)


def test_scl_per_anchor_halves() -> None:
    # B = 1, l.a = 0, l.v = .6, a.v = .8, alpha = .8: anchors l: (.64 + .04)/2 = .34, a: (.64 + 0)/2 = .32,
    # v: (.04 + 0)/2 = .02; mean = .68 / 3.
    reps = tensors(l=[[1, 0]], a=[[0, 1]], v=[[3, 4]])
    assert scl_loss(reps, 0.8).item() == pytest.approx(0.68 / 3, abs=1e-6)


def test_iamcl_hand_value() -> None:
    # Anchors of sample 2 (class 0) have no positive and are left out: 6 anchors remain.
    # l0: pos L1 .6, neg L2 0     -> ratio .6/.6 = 1,   refine (.6-1)^2 = .16
    # l1: pos L0 .6, neg L2 .8    -> ratio .6/1.4,      refine .16
    # a0: pos A1 1,  neg A2 .6    -> ratio 1/1.6,       refine 0
    # a1: pos A0 1,  neg A2 .6    -> ratio 1/1.6,       refine 0
    # v0: pos V1 0,  neg V2 0     -> denominator 0: ratio 0, refine (0-1)^2 = 1
    # v1: pos V0 0,  neg V2 0     -> ratio 0,           refine 1
    ratios = [1, 0.6 / 1.4, 1 / 1.6, 1 / 1.6, 0, 0]
    refines = [0.16, 0.16, 0, 0, 1, 1]
    reps = tensors(**HAND)
    off = iamcl_loss(reps, HAND_CLASSES, refine=False).item()
    on = iamcl_loss(reps, HAND_CLASSES, refine=True).item()
    assert off == pytest.approx(-sum(ratios) / 6, abs=1e-6)
    assert on == pytest.approx((sum(refines) - sum(ratios)) / 6, abs=1e-6)


# IEMCL on HAND: positives are the other two modalities of the other same-class sample, negatives those of
# sample 2. (sum_pos, sum_neg, [positive similarities]) per anchor:
#   l0 = (1,0):   pos A1 0,  V1 0     neg A2 .8,  V2 0  -> (0,   .8,  [0, 0])
#   l1 = (.6,.8): pos A0 .8, V0 .6    neg A2 .96, V2 0  -> (1.4, .96, [.8, .6])
#   a0 = (0,1):   pos L1 .8, V1 1     neg L2 1,   V2 0  -> (1.8, 1,   [.8, 1])
#   a1 = (0,1):   pos L0 0,  V0 0     neg L2 1,   V2 0  -> (0,   1,   [0, 0])
#   v0 = (1,0):   pos L1 .6, A1 0     neg L2 0,   A2 .8 -> (.6,  .8,  [.6, 0])
#   v1 = (0,1):   pos L0 0,  A0 1     neg L2 1,   A2 .6 -> (1,   1.6, [0, 1])
IEMCL_ANCHORS = [
    (0, 0.8, [0, 0]),
    (1.4, 0.96, [0.8, 0.6]),
    (1.8, 1, [0.8, 1]),
    (0, 1, [0, 0]),
    (0.6, 0.8, [0.6, 0]),
    (1, 1.6, [0, 1]),
]


@pytest.mark.parametrize(
    ("alpha", "refine", "refines"),
    [
        (0.8, False, [0, 0, 0, 0, 0, 0]),
        # 1/(2N) sum (s - .8)^2: l0 (.64+.64)/2, l1 (0+.04)/2, a0 (0+.04)/2, a1 .64, v0 (.04+.64)/2, v1 same
        (0.8, True, [0.64, 0.02, 0.02, 0.64, 0.34, 0.34]),
        # alpha 1: l0 1, l1 (.04+.16)/2, a0 (.04+0)/2, a1 1, v0 (.16+1)/2, v1 (1+0)/2
        (1.0, True, [1, 0.1, 0.02, 1, 0.58, 0.5]),
    ],
)
def test_iemcl_hand_value(alpha: float, refine: bool, refines: list[float]) -> None:
    ratios = [p / (p + n) for p, n, _ in IEMCL_ANCHORS]  # -> 0, 1.4/2.36, 1.8/2.8, 0, .6/1.4, 1/2.6
    expected = (sum(refines) - sum(ratios)) / 6
    assert iemcl_loss(tensors(**HAND), HAND_CLASSES, alpha, refine=refine).item() == pytest.approx(
        expected, abs=1e-6
    )


def test_iemcl_ignores_the_anchors_own_sample() -> None:
    # B = 2, one class each: the only same-class candidates are the anchor's own other modalities, which
    # IEMCL must not use, so no anchor has a positive and the loss is 0 whatever the similarities are.
    reps = tensors(l=[[1, 0], [0, 1]], a=[[1, 0], [0, 1]], v=[[1, 0], [0, 1]])
    assert iemcl_loss(reps, torch.tensor([0, 1]), 0.8).item() == 0.0


# Comparison-loss batch: B = 5, classes [1, 1, 1, 0, 0], the same vectors in each modality, normalised
#   n0 = (1,0), n1 = (.6,.8), n2 = (0,1), n3 = (.8,.6), n4 = (-1,0)
# similarities: s01 .6, s02 0, s03 .8, s04 -1, s12 .8, s13 .96, s14 -.6, s23 .6, s24 0, s34 -.8
# squared distances of unit vectors: 2 - 2s.
CMP = [[1, 0], [3, 4], [0, 1], [4, 3], [-1, 0]]
CMP_CLASSES = torch.tensor([1, 1, 1, 0, 0])


def test_hard_triplet_picks_hardest_positive_and_negative() -> None:
    # anchor 0: pos {1: .6, 2: 0} -> 2 (d 2); neg {3: .8, 4: -1} -> 3 (d .4): 2 - .4 + 1 = 2.6
    # anchor 1: pos {0: .6, 2: .8} -> 0 (d .8); neg {3: .96, 4: -.6} -> 3 (d .08): .8 - .08 + 1 = 1.72
    # anchor 2: pos {0: 0, 1: .8} -> 0 (d 2); neg {3: .6, 4: 0} -> 3 (d .8): 2 - .8 + 1 = 2.2
    # anchor 3: pos {4: -.8} (d 3.6); neg {0: .8, 1: .96, 2: .6} -> 1 (d .08): 3.6 - .08 + 1 = 4.52
    # anchor 4: pos {3: -.8} (d 3.6); neg {0: -1, 1: -.6, 2: 0} -> 2 (d 2): 3.6 - 2 + 1 = 2.6
    value = hard_triplet_loss(same_in_all(CMP), CMP_CLASSES, "intra").item()
    assert value == pytest.approx((2.6 + 1.72 + 2.2 + 4.52 + 2.6) / 5, abs=1e-5)


def test_triplet_hinge() -> None:
    # x0 = x1 = (1,0) class 1, x2 = (-1,0) class 0: anchors 0 and 1 have d(a,p) = 0, d(a,n) = 4 -> -3;
    # anchor 2 has no positive. Without the hinge the mean is -3, with it 0.
    reps, classes = same_in_all([[1, 0], [2, 0], [-1, 0]]), torch.tensor([1, 1, 0])
    for loss in (triplet_loss, hard_triplet_loss):
        assert loss(reps, classes, hinge=False).item() == pytest.approx(-3, abs=1e-6)
        assert loss(reps, classes, hinge=True).item() == 0.0
    # a margin of 5 makes the term 0 - 4 + 5 = 1, hinged or not
    assert triplet_loss(reps, classes, margin=5.0).item() == pytest.approx(1, abs=1e-6)


def test_npair_hand_value() -> None:
    # classes [1, 1, 0, 0], x = (1,0), (0,1), (.6,.8), (-1,0): one positive per anchor, so no randomness.
    # anchor 0: a.p = 0,   a.n = .6, -1 -> log(1 + e^.6 + e^-1)
    # anchor 1: a.p = 0,   a.n = .8, 0  -> log(1 + e^.8 + e^0)
    # anchor 2: a.p = -.6, a.n = .6, .8 -> log(1 + e^1.2 + e^1.4)
    # anchor 3: a.p = -.6, a.n = -1, 0  -> log(1 + e^-.4 + e^.6)
    reps = same_in_all([[1, 0], [0, 1], [3, 4], [-1, 0]])
    expected = (
        math.log(1 + math.exp(0.6) + math.exp(-1))
        + math.log(2 + math.exp(0.8))
        + math.log(1 + math.exp(1.2) + math.exp(1.4))
        + math.log(1 + math.exp(-0.4) + math.exp(0.6))
    ) / 4
    assert npair_loss(reps, torch.tensor([1, 1, 0, 0]), "intra").item() == pytest.approx(expected, abs=1e-5)


def test_classical_contrastive_hand_value() -> None:
    # classes [1, 1, 0, 0], x = (1,0), (.6,.8), (.8,.6), (0,1): one positive per anchor.
    # anchor 0: -.6 / (.6 + .8 + 0);  anchor 1: -.6 / (.6 + .96 + .8)
    # anchor 2: -.6 / (.6 + .8 + .96); anchor 3: -.6 / (.6 + 0 + .8)
    reps = same_in_all([[1, 0], [3, 4], [4, 3], [0, 1]])
    expected = -(0.6 / 1.4 + 0.6 / 2.36) / 2
    value = classical_contrastive_loss(reps, torch.tensor([1, 1, 0, 0]), "intra").item()
    assert value == pytest.approx(expected, abs=1e-6)


def test_classical_contrastive_uses_one_random_positive() -> None:
    # B = 3: anchor 0 (class 1) has positives x1 (s .6) and x2 (s 0) and negative x3 (s .8); anchors 1, 2
    # have positives too. Restrict the check to modality l by making a and v zero (ratio 0 for them).
    # Anchor 0's term is -.6/1.4 or -0/.8 = 0 depending on the draw; over seeds both must occur.
    zeros = [[0, 0]] * 4
    reps = tensors(l=[[1, 0], [3, 4], [0, 1], [4, 3]], a=zeros, v=zeros)
    classes = torch.tensor([1, 1, 1, 0])
    seen = set()
    for seed in range(30):
        value = classical_contrastive_loss(reps, classes, generator=torch.Generator().manual_seed(seed))
        seen.add(round(value.item(), 6))
    # anchor terms: 0 in {-.6/1.4, 0}; 1 in {-.6/1.56 (x0), -.8/1.76 (x2)}; 2 in {0 (x0), -.8/1.4 (x1)};
    # anchor 3 has no positive; a and v anchors are 0. Mean over 9 anchors of every combination:
    options = itertools.product([-0.6 / 1.4, 0], [-0.6 / 1.56, -0.8 / 1.76], [0, -0.8 / 1.4])
    allowed = {round(sum(c) / 9, 6) for c in options}
    assert seen <= allowed
    assert len(seen) >= 4


def test_seeded_random_choices_are_reproducible() -> None:
    reps = random_reps(8, 4, seed=3)
    classes = torch.tensor([0, 1, 0, 1, 1, 0, 1, 1])
    for loss in (triplet_loss, npair_loss, classical_contrastive_loss):
        for kind in ("intra", "inter"):
            values = {
                loss(reps, classes, kind, generator=torch.Generator().manual_seed(7)).item() for _ in range(3)
            }
            assert len(values) == 1
            other = {
                loss(reps, classes, kind, generator=torch.Generator().manual_seed(s)).item() for s in range(8)
            }
            assert len(other) > 1  # the choice really is random


# ---------------------------------------------------------------- literal reference


def random_reps(batch: int, dim: int, seed: int, nonneg: bool = True) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    out = {}
    for m in M:
        x = torch.randn(batch, dim, generator=g, dtype=torch.float64)
        out[m] = (x.abs() if nonneg else x).float().requires_grad_()
    return out


def unit(x: torch.Tensor) -> list[float]:
    n = math.sqrt(sum(float(v) ** 2 for v in x))
    return [float(v) / n if n > 0 else 0.0 for v in x]


def dot(x: list[float], y: list[float]) -> float:
    return sum(a * b for a, b in zip(x, y, strict=True))


def candidates(u, classes, i, m, kind):
    """Literal pair definition: (positive vectors, negative vectors) of anchor (i, m)."""
    mods = [m] if kind == "intra" else [o for o in M if o != m]
    pos = [u[o][j] for o in mods for j in range(len(classes)) if j != i and classes[j] == classes[i]]
    neg = [u[o][j] for o in mods for j in range(len(classes)) if classes[j] != classes[i]]
    return pos, neg


def anchor_terms(reps, classes, kind, per_anchor):
    """per_anchor(a, positives, negatives) of every anchor (sample, modality) that has a term."""
    u = {m: [unit(x) for x in reps[m].detach()] for m in M}
    terms = []
    for m in M:
        for i in range(len(classes)):
            term = per_anchor(u[m][i], *candidates(u, classes.tolist(), i, m, kind))
            if term is not None:
                terms.append(term)
    return terms


def reference(reps, classes, kind, per_anchor):
    """Mean of per_anchor(a, positives, negatives) over anchors; None results are left out."""
    terms = anchor_terms(reps, classes, kind, per_anchor)
    return sum(terms) / len(terms) if terms else 0.0


def scl_terms(reps, alpha):
    u = {m: [unit(x) for x in reps[m].detach()] for m in M}
    n = len(u["l"])
    return [0.5 * sum((dot(u[m][i], u[o][i]) - alpha) ** 2 for o in M if o != m) for m in M for i in range(n)]


def ratio_term(target):
    def term(a, pos, neg):
        if not pos:
            return None
        sp, sn = sum(dot(a, p) for p in pos), sum(dot(a, n) for n in neg)
        value = -(sp / (sp + sn) if sp + sn != 0 else 0.0)
        if target is not None:
            value += sum((dot(a, p) - target) ** 2 for p in pos) / len(pos)
        return value

    return term


def sqdist(a, b):
    return sum((x - y) ** 2 for x, y in zip(a, b, strict=True))


def hard_triplet_term(a, pos, neg):
    if not pos or not neg:
        return None
    p = min(pos, key=lambda v: dot(a, v))
    n = max(neg, key=lambda v: dot(a, v))
    return max(0.0, sqdist(a, p) - sqdist(a, n) + 1)


def expected_triplet_term(a, pos, neg):
    """Average of the hinged Eq. 16 over every (positive, negative) choice: the random loss's expectation."""
    if not pos or not neg:
        return None
    return sum(max(0.0, sqdist(a, p) - sqdist(a, n) + 1) for p in pos for n in neg) / (len(pos) * len(neg))


def expected_npair_term(a, pos, neg):
    if not pos or not neg:
        return None
    return sum(math.log(1 + sum(math.exp(dot(a, n) - dot(a, p)) for n in neg)) for p in pos) / len(pos)


def expected_contrastive_term(a, pos, neg):
    if not pos or not neg:
        return None
    sn = sum(dot(a, n) for n in neg)
    return sum(-dot(a, p) / (dot(a, p) + sn) for p in pos) / len(pos)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_hycon_losses_match_literal_reference(seed: int) -> None:
    reps = random_reps(7, 5, seed)
    classes = torch.randint(0, 2, (7,), generator=torch.Generator().manual_seed(seed))
    u = {m: [unit(x) for x in reps[m].detach()] for m in M}
    scl_ref = (
        sum(0.5 * sum((dot(u[m][i], u[o][i]) - 0.7) ** 2 for o in M if o != m) for m in M for i in range(7))
        / 21
    )
    assert scl_loss(reps, 0.7).item() == pytest.approx(scl_ref, abs=1e-5)
    for refine in (False, True):
        assert iamcl_loss(reps, classes, refine).item() == pytest.approx(
            reference(reps, classes, "intra", ratio_term(1.0 if refine else None)), abs=1e-5
        )
        assert iemcl_loss(reps, classes, 0.7, refine).item() == pytest.approx(
            reference(reps, classes, "inter", ratio_term(0.7 if refine else None)), abs=1e-5
        )


@pytest.mark.parametrize("kind", ["intra", "inter"])
def test_hard_triplet_matches_literal_reference(kind: str) -> None:
    reps = random_reps(8, 4, seed=5, nonneg=False)
    classes = torch.tensor([0, 1, 1, 0, 1, 0, 0, 1])
    expected = reference(reps, classes, kind, hard_triplet_term)
    assert hard_triplet_loss(reps, classes, kind).item() == pytest.approx(expected, abs=1e-5)


@pytest.mark.parametrize(
    ("loss", "term"),
    [
        (triplet_loss, expected_triplet_term),
        (npair_loss, expected_npair_term),
        (classical_contrastive_loss, expected_contrastive_term),
    ],
)
def test_random_choice_losses_average_to_uniform_expectation(loss, term) -> None:
    # Averaged over many seeded draws, a loss with uniformly drawn positives (and negatives) approaches the
    # mean over every choice, computed literally; the inter pairs have several positives per anchor.
    reps = random_reps(6, 3, seed=11)
    classes = torch.tensor([0, 1, 1, 0, 1, 1])
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        draws = [loss(reps, classes, "inter", generator=g).item() for _ in range(600)]
    expected = reference(reps, classes, "inter", term)
    assert sum(draws) / len(draws) == pytest.approx(expected, abs=0.01 * max(1.0, abs(expected)))


# ---------------------------------------------------------------- degenerate batches and gradients


def all_losses(reps, classes):
    g = torch.Generator().manual_seed(0)
    yield "scl", scl_loss(reps, 0.8)
    yield "iamcl", iamcl_loss(reps, classes)
    yield "iemcl", iemcl_loss(reps, classes, 0.8)
    for kind in ("intra", "inter"):
        yield f"triplet-{kind}", triplet_loss(reps, classes, kind, generator=g)
        yield f"hard-{kind}", hard_triplet_loss(reps, classes, kind)
        yield f"npair-{kind}", npair_loss(reps, classes, kind, generator=g)
        yield f"contrastive-{kind}", classical_contrastive_loss(reps, classes, kind, generator=g)
    for name in ("hycon", "triplet", "hard_triplet", "npair", "contrastive", "none"):
        yield f"hybrid-{name}", hybrid_loss(reps, classes, alpha=0.8, contrastive=name, generator=g)[0]


DEGENERATE = {
    "one class": (random_reps(4, 3, seed=1), [1, 1, 1, 1]),
    "B=2 two classes": (random_reps(2, 3, seed=2), [0, 1]),
    "B=2 one class": (random_reps(2, 3, seed=3), [1, 1]),
    "B=1": (random_reps(1, 3, seed=4), [0]),
    "zero vectors": ({m: torch.zeros(4, 3, requires_grad=True) for m in M}, [0, 1, 0, 1]),
    "orthogonal": (
        # every vector of the batch orthogonal to every other, in every modality: all similarities 0
        {m: torch.eye(4).requires_grad_() for m in M},
        [0, 1, 0, 1],
    ),
}


@pytest.mark.parametrize("case", list(DEGENERATE))
def test_degenerate_batches_are_finite(case: str) -> None:
    base, labels = DEGENERATE[case]
    classes = torch.tensor(labels)
    for name, value in all_losses(base, classes):
        assert value.dim() == 0 and torch.isfinite(value), (case, name)
        grads = torch.autograd.grad(value, [base[m] for m in M], allow_unused=True)
        assert all(g is None or torch.isfinite(g).all() for g in grads), (case, name)


def test_orthogonal_batch_values() -> None:
    # Orthogonal, across samples but with l = a = v per sample: every cross-sample similarity is 0, so the
    # ratio is 0 by definition; IAMCL's refinement gives (0-1)^2 = 1, IEMCL's (0-.8)^2 = .64, SCL's
    # same-sample similarities are 1: (1-.8)^2 = .04 per anchor.
    reps, classes = DEGENERATE["orthogonal"][0], torch.tensor([0, 1, 0, 1])
    assert iamcl_loss(reps, classes).item() == pytest.approx(1.0)
    assert iemcl_loss(reps, classes, 0.8).item() == pytest.approx(0.64)
    assert scl_loss(reps, 0.8).item() == pytest.approx(0.04)


def test_one_class_batch_values() -> None:
    # No negatives: the non-negative ratio is 1 for every anchor with a nonzero positive sum.
    reps = random_reps(4, 3, seed=1)
    ones = torch.ones(4, dtype=torch.long)
    assert iamcl_loss(reps, ones, refine=False).item() == pytest.approx(-1.0)
    assert iemcl_loss(reps, ones, 0.8, refine=False).item() == pytest.approx(-1.0)
    # comparison losses need a negative: nothing qualifies, a graph-attached zero
    value = triplet_loss(reps, ones, generator=torch.Generator().manual_seed(0))
    assert value.item() == 0.0 and value.requires_grad


@pytest.mark.parametrize("name", ["scl", "iamcl", "iemcl", "hybrid-hycon", "hybrid-triplet", "hybrid-npair"])
def test_gradient_reaches_every_modality(name: str) -> None:
    reps = random_reps(6, 4, seed=9)
    classes = torch.tensor([0, 1, 1, 0, 1, 0])
    value = dict(all_losses(reps, classes))[name]
    value.backward()
    for m in M:
        assert reps[m].grad is not None and reps[m].grad.abs().sum() > 0, (name, m)


def test_half_precision_inputs() -> None:
    # Under mixed precision the encoders emit float16; the losses compute in float32 and agree.
    reps = random_reps(5, 4, seed=2)
    half = {m: r.detach().half() for m, r in reps.items()}
    classes = torch.tensor([0, 1, 1, 0, 1])
    assert iemcl_loss(half, classes, 0.8).dtype == torch.float32
    assert iemcl_loss(half, classes, 0.8).item() == pytest.approx(
        iemcl_loss(reps, classes, 0.8).item(), abs=1e-2
    )


# ---------------------------------------------------------------- hybrid loss, classes, errors


def _hybrid(*args, **kwargs) -> tuple[torch.Tensor, dict[str, float]]:
    """hybrid_loss with its parts (detached 0-d tensors, so no sync per step) read as floats."""
    total, parts = hybrid_loss(*args, **kwargs)
    assert all(isinstance(v, torch.Tensor) and v.dim() == 0 and not v.requires_grad for v in parts.values())
    return total, {key: float(value) for key, value in parts.items()}


def test_hybrid_is_weighted_sum_and_lambda_zero_skips() -> None:
    reps = random_reps(6, 4, seed=4)
    classes = torch.tensor([0, 1, 1, 0, 1, 0])
    parts = {
        "iamcl": iamcl_loss(reps, classes).item(),
        "iemcl": iemcl_loss(reps, classes, 0.8).item(),
        "scl": scl_loss(reps, 0.8).item(),
    }
    total, got = _hybrid(reps, classes, alpha=0.8, lambdas=(0.5, 2.0, 3.0))
    assert got == pytest.approx(parts, abs=1e-6)
    assert total.item() == pytest.approx(
        0.5 * parts["iamcl"] + 2 * parts["iemcl"] + 3 * parts["scl"], abs=1e-5
    )
    for off, key in enumerate(("iamcl", "iemcl", "scl")):
        lambdas = tuple(0.0 if k == off else 1.0 for k in range(3))
        total, got = _hybrid(reps, classes, alpha=0.8, lambdas=lambdas)
        assert got[key] == 0.0
        assert total.item() == pytest.approx(sum(v for k, v in parts.items() if k != key), abs=1e-5)
    # W/O refinement and W/O modality margin reach the terms
    total, got = _hybrid(reps, classes, alpha=1.0, refine=False)
    assert got["iemcl"] == pytest.approx(iemcl_loss(reps, classes, 1.0, refine=False).item(), abs=1e-6)
    assert got["scl"] == pytest.approx(scl_loss(reps, 1.0).item(), abs=1e-6)


def test_hybrid_none_is_zero_and_backward_works() -> None:
    reps = random_reps(4, 3, seed=0)
    total, parts = _hybrid(reps, torch.tensor([0, 1, 0, 1]), alpha=0.8, contrastive="none")
    assert total.item() == 0.0 and parts == {"iamcl": 0.0, "iemcl": 0.0, "scl": 0.0}
    total.backward()
    assert all(torch.equal(reps[m].grad, torch.zeros(4, 3)) for m in M)


def test_hybrid_comparison_replaces_iamcl_and_iemcl() -> None:
    reps = random_reps(6, 4, seed=6)
    classes = torch.tensor([0, 1, 1, 0, 1, 0])
    total, parts = _hybrid(reps, classes, alpha=0.8, contrastive="hard_triplet")
    assert parts["iamcl"] == pytest.approx(hard_triplet_loss(reps, classes, "intra").item(), abs=1e-6)
    assert parts["iemcl"] == pytest.approx(hard_triplet_loss(reps, classes, "inter").item(), abs=1e-6)
    assert total.item() == pytest.approx(sum(parts.values()), abs=1e-5)
    # seeded hybrid: the intra draw comes first, then the inter draw, from the same generator
    g = torch.Generator().manual_seed(3)
    intra, inter = (
        npair_loss(reps, classes, "intra", generator=g),
        npair_loss(reps, classes, "inter", generator=g),
    )
    _, parts = _hybrid(
        reps, classes, alpha=0.8, contrastive="npair", generator=torch.Generator().manual_seed(3)
    )
    assert (parts["iamcl"], parts["iemcl"]) == pytest.approx((intra.item(), inter.item()), abs=1e-6)


def test_class_labels() -> None:
    labels = torch.tensor([-2.0, -0.2, 0.0, 0.4, 3.0])
    assert class_labels(labels).tolist() == [0, 0, 1, 1, 1]
    assert class_labels(labels, zero_class="negative").tolist() == [0, 0, 0, 1, 1]
    assert class_labels(labels).dtype == torch.long


def test_bad_arguments() -> None:
    reps = random_reps(3, 2, seed=0)
    classes = torch.tensor([0, 1, 0])
    with pytest.raises(ConfigError, match="loss.contrastive"):
        hybrid_loss(reps, classes, alpha=0.8, contrastive="simclr")
    with pytest.raises(ConfigError, match="lambda"):
        hybrid_loss(reps, classes, alpha=0.8, lambdas=(1.0, -1.0, 1.0))
    with pytest.raises(ConfigError, match="loss.zero_class"):
        class_labels(torch.tensor([0.0]), zero_class="positive")
    with pytest.raises(ValueError, match="integer"):
        iamcl_loss(reps, classes.float())
    with pytest.raises(ValueError, match="shape"):
        iamcl_loss(reps, torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="keys"):
        scl_loss({"l": reps["l"], "a": reps["a"]}, 0.8)
    with pytest.raises(ValueError, match="one shape"):
        scl_loss({**reps, "v": torch.zeros(3, 5)}, 0.8)
    with pytest.raises(ValueError, match="intra"):
        triplet_loss(reps, classes, "cross")


# ---------------------------------------------------------------- Eq. 13's sum, vanishing representations


@pytest.mark.parametrize("seed", [0, 1])
def test_sum_reduction_is_the_sum_over_every_anchor(seed: int) -> None:
    """hybrid_loss(reduction='sum') = sum over all (sample, modality) anchors of the weighted per-anchor
    terms (Eq. 13 "summed over all data samples of different modalities"); 'mean' = each term's mean."""
    reps = random_reps(9, 6, seed)
    classes = torch.tensor([0, 1, 1, 0, 1, 0, 0, 1, 1])
    lambdas = (0.5, 2.0, 3.0)
    per_term = {
        "iamcl": anchor_terms(reps, classes, "intra", ratio_term(1.0)),
        "iemcl": anchor_terms(reps, classes, "inter", ratio_term(0.7)),
        "scl": scl_terms(reps, 0.7),
    }
    assert all(len(t) == 27 for t in per_term.values())  # every anchor has a positive here
    brute_sum = sum(w * sum(per_term[k]) for w, k in zip(lambdas, per_term, strict=True))
    brute_mean = sum(w * sum(per_term[k]) / 27 for w, k in zip(lambdas, per_term, strict=True))
    total, parts = _hybrid(reps, classes, alpha=0.7, lambdas=lambdas, reduction="sum")
    assert total.item() == pytest.approx(brute_sum, rel=1e-5)
    assert parts == pytest.approx({k: sum(v) for k, v in per_term.items()}, rel=1e-5)
    assert _hybrid(reps, classes, alpha=0.7, lambdas=lambdas)[0].item() == pytest.approx(brute_mean, rel=1e-5)


def test_sum_reduction_leaves_out_anchors_without_positive() -> None:
    reps = random_reps(5, 4, seed=3)
    classes = torch.tensor([0, 1, 1, 1, 1])  # sample 0 has no positive: its 3 anchors are left out
    for kind, loss in (
        ("intra", partial(iamcl_loss, refine=True)),
        ("inter", partial(iemcl_loss, alpha=0.8)),
    ):
        terms = anchor_terms(reps, classes, kind, ratio_term(1.0 if kind == "intra" else 0.8))
        assert len(terms) == 12
        assert loss(reps, classes, reduction="sum").item() == pytest.approx(sum(terms), rel=1e-5)
        assert loss(reps, classes, reduction="mean").item() == pytest.approx(sum(terms) / 12, rel=1e-5)


def test_comparison_losses_sum_is_mean_times_anchors() -> None:
    reps = random_reps(6, 4, seed=5)
    classes = torch.tensor([0, 1, 1, 0, 1, 0])  # every anchor has a positive and a negative: 18 anchors
    for loss in (triplet_loss, npair_loss, classical_contrastive_loss):
        mean = loss(reps, classes, "inter", generator=torch.Generator().manual_seed(0))
        total = loss(reps, classes, "inter", generator=torch.Generator().manual_seed(0), reduction="sum")
        assert total.item() == pytest.approx(18 * mean.item(), rel=1e-5)
    assert hard_triplet_loss(reps, classes, reduction="sum").item() == pytest.approx(
        18 * hard_triplet_loss(reps, classes).item(), rel=1e-5
    )
    with pytest.raises(ConfigError, match="loss.reduction"):
        hybrid_loss(reps, classes, alpha=0.8, reduction="avg")


def vanishing_gradient(eps: float) -> tuple[float, float]:
    """Gradient norm of a sample whose language representation is one active unit of size eps, and the
    median of the others' (B = 32, d = 50, ReLU'd Gaussian representations, the hybrid loss)."""
    g = torch.Generator().manual_seed(0)
    reps = {m: torch.randn(32, 50, generator=g).relu() for m in M}
    reps["l"][0] = 0.0
    reps["l"][0, 3] = eps
    reps = {m: r.requires_grad_() for m, r in reps.items()}
    classes = (torch.rand(32, generator=g) > 0.5).long()
    hybrid_loss(reps, classes, alpha=0.8)[0].backward()
    norms = reps["l"].grad.norm(dim=-1)
    return norms[0].item(), norms[1:].median().item()


def test_vanishing_representation_gradient_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    for eps in (1e-2, 1e-4, 1e-6, 1e-9):
        tiny, others = vanishing_gradient(eps)
        assert tiny < 1.0 and 0 < others < 0.05, eps
    # Without the floor (F.normalize's 1e-12), the gradient grows as 1/eps: 795 at eps = 1e-4.
    monkeypatch.setattr(pipeline.losses, "NORM_FLOOR", 1e-12)
    assert vanishing_gradient(1e-4)[0] > 500
