"""The optimizer of every SGD-trained family and its learning-rate schedule (`train.schedule`).

Adam with two parameter groups (the fine-tuned language model at `train.lr_lm`, the rest at `train.lr`);
`train.schedule` scales both per optimizer step. The schedule is a function of the step number alone (no
scheduler state to store), so a run resumed from `last.pt` continues it exactly.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch

if TYPE_CHECKING:
    from pipeline.models.contract import ModelFamily


def schedule_factor(train_cfg: dict[str, Any], step: int, total: int) -> float:
    """Multiplier of the base learning rates at optimizer step `step` (from 0) of `total` planned steps:
    1 for `train.schedule: none`; for `linear_warmup` (MAG-BERT's original, transformers'
    get_linear_schedule_with_warmup) a linear rise over the first `train.warmup` fraction of the steps,
    then a linear fall to 0 at step `total`."""
    if train_cfg["schedule"] == "none":
        return 1.0
    warmup = int(train_cfg["warmup"] * total)
    if step < warmup:
        return step / warmup
    return max(0.0, (total - step) / max(1, total - warmup))


def set_scheduled_lr(
    optimizer: torch.optim.Optimizer, train_cfg: dict[str, Any], step: int, total: int
) -> None:
    """Set every parameter group's rate to its base rate (`base_lr`, set by `make_optimizer`) times
    `schedule_factor`; stateless, so that a resumed run continues the schedule from its epoch."""
    factor = schedule_factor(train_cfg, step, total)
    for group in optimizer.param_groups:
        group["lr"] = group["base_lr"] * factor


def make_optimizer(model: ModelFamily, train_cfg: dict[str, Any]) -> torch.optim.Adam:
    """Adam with two parameter groups: the language model at `lr_lm` (paper: 1e-5), the rest at `lr`
    (each group's `base_lr`; `train.schedule` scales it per step, `set_scheduled_lr`). `weight_decay`
    (Adam's L2 term) decays the rest only: a fine-tuned pretrained language model is not pulled towards
    zero (the baselines' references decay their own layers and read fixed language features)."""
    lm_params = list(model.language_model.parameters()) if model.language_model is not None else []
    lm_ids = {id(p) for p in lm_params}
    rest = [p for p in model.parameters() if id(p) not in lm_ids]
    lr, decay = train_cfg["lr"], train_cfg["weight_decay"]
    groups = [{"params": rest, "lr": lr, "base_lr": lr, "weight_decay": decay, "name": "rest"}]
    if lm_params:
        lr_lm = train_cfg["lr_lm"]
        groups.append(
            {
                "params": lm_params,
                "lr": lr_lm,
                "base_lr": lr_lm,
                "weight_decay": 0.0,
                "name": "language_model",
            }
        )
    return torch.optim.Adam(groups)
