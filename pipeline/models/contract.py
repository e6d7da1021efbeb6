"""What every model family returns and offers: `ModelOutput` and the `ModelFamily` protocol.

`train`, `evaluate`, `inference.predict`, the search and the benchmarks call a family only through these:
built as ``Family(model, audio_dim, visual_dim, seq_len, lm_hidden)`` (`model`: the `model` settings
section, the only settings a family reads; `build_model` does it), fed ``model_inputs(batch, device)`` and
called with those keyword inputs, returning a `ModelOutput`. A family with a `fit` classmethod (the text
probe) is fitted in closed form instead of trained by SGD (`train.fit_closed_form`).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, NamedTuple, Protocol, runtime_checkable

import torch
from torch import nn


class ModelOutput(NamedTuple):
    """One forward pass of a family on a batch of B segments.

    prediction: sentiment [B] (float; Eq. 2's regression output).
    unimodal: representations {'l', 'a', 'v'} -> [B, d] that the contrastive terms compare (HyCon only;
        {} for every baseline, so no contrastive term applies to them).
    fused: the representation the regression output reads [B, D] (HyCon's fusion output; a baseline's as
        its `fuse` docstring names it), kept for the t-SNE figure.
    """

    prediction: torch.Tensor
    unimodal: dict[str, torch.Tensor]
    fused: torch.Tensor


@runtime_checkable
class ModelFamily(Protocol):
    """A built model of any family, as the stages use it (an `nn.Module`).

    `language_model`: the fine-tuned language model (its own learning rate, `train.lr_lm`), or None when
    nothing is fine-tuned.
    """

    language_model: nn.Module | None

    def model_inputs(self, batch: dict[str, Any], device: torch.device) -> dict[str, torch.Tensor]:
        """A dataset batch (`AlignedDataset`) -> the keyword inputs of `__call__`, on `device`."""
        ...

    def __call__(
        self, audio: torch.Tensor, visual: torch.Tensor, length: torch.Tensor, **inputs: Any
    ) -> ModelOutput:
        """Audio [B, T, Da], visual [B, T, Dv], lengths [B] and the language inputs -> `ModelOutput`."""
        ...

    def parameters(self, recurse: bool = True) -> Iterator[nn.Parameter]:
        """The trainable parameters (nn.Module's)."""
        ...

    def state_dict(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        """The weights `model.pt` and `last.pt` store (nn.Module's)."""
        ...

    def load_state_dict(self, state_dict: Any, strict: bool = True, assign: bool = False) -> Any:
        """Restore `state_dict` (nn.Module's)."""
        ...

    def train(self, mode: bool = True) -> Any:
        """Training mode (dropout on; nn.Module's)."""
        ...

    def eval(self) -> Any:
        """Evaluation mode (nn.Module's)."""
        ...

    def to(self, *args: Any, **kwargs: Any) -> Any:
        """Moved to a device or dtype (nn.Module's)."""
        ...
