"""Text probe: ridge regression on frozen language features, the floor every multimodal model must clear.

Features: the frozen language model's mean over word pieces and its first-token ([CLS]) state,
concatenated ([B, 2H]; 768 for MiniLM), computed from the text by `model_inputs` (the language model is held
outside the module's parameters and state: model.pt keeps only the ridge weights). The fit is closed form,
not SGD: `TextProbe.fit` centres the training features and labels, solves (Xc'Xc + alpha I) w = Xc'yc for
every alpha of `ALPHAS` (one eigendecomposition), keeps the alpha with the best validation `train.select`
score and the intercept mean(y) - mean(x) . w, which is scikit-learn's `Ridge(alpha)` with an intercept.
The fit is deterministic: every seed gives the same probe.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from pipeline.data.loader import AlignedDataset, iterate_batches
from pipeline.errors import ConfigError
from pipeline.metrics import regression_metrics
from pipeline.models import build_model, lm_mode_conflict
from pipeline.models.contract import ModelOutput
from pipeline.models.language import load_language_model, select_token, tokenize
from pipeline.settings import LOWER_IS_BETTER

ALPHAS: tuple[float, ...] = tuple(10.0**k for k in range(-3, 5))


def ridge_path(x: np.ndarray, y: np.ndarray, alphas: tuple[float, ...]) -> list[tuple[np.ndarray, float]]:
    """Ridge solutions (weights [D], intercept) with an unpenalised intercept, one per alpha (float64)."""
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    x_mean, y_mean = x.mean(0), y.mean()
    xc, yc = x - x_mean, y - y_mean
    eigval, eigvec = np.linalg.eigh(xc.T @ xc)
    projected = eigvec.T @ (xc.T @ yc)
    solutions = []
    for alpha in alphas:
        weight = eigvec @ (projected / (eigval + alpha))
        solutions.append((weight, float(y_mean - x_mean @ weight)))
    return solutions


class TextProbe(nn.Module):
    """Ridge probe with HyCon's interface; `fit` replaces the training loop (frozen mode only)."""

    def __init__(
        self,
        model: dict[str, Any],
        audio_dim: int,
        visual_dim: int,
        seq_len: int,
        lm_hidden: int | None = None,
    ) -> None:
        super().__init__()
        if problem := lm_mode_conflict("text_probe", model["lm_mode"]):
            raise ConfigError(problem)
        self.language_model: nn.Module | None = None  # nothing is fine-tuned
        self.max_tokens = model["max_text_tokens"]
        encoder, self.tokenizer = load_language_model(model["language_model"])
        self._encoder = [encoder.eval().requires_grad_(False)]  # a list: not a submodule, not in state_dict
        width = 2 * encoder.config.hidden_size
        self.register_buffer("weight", torch.zeros(width))
        self.register_buffer("bias", torch.zeros(()))
        self.register_buffer("alpha", torch.zeros((), dtype=torch.float64))

    def forward(
        self,
        audio: torch.Tensor,
        visual: torch.Tensor,
        length: torch.Tensor,
        *,
        lm_features: torch.Tensor | None = None,
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
    ) -> ModelOutput:
        """Prediction [B] from the probe features `lm_features` [B, 2H] (see `model_inputs`); fused = them."""
        if lm_features is None:
            raise ValueError("text_probe: pass lm_features, the probe features of model_inputs")
        return ModelOutput(lm_features @ self.weight + self.bias, {}, lm_features)

    @torch.no_grad()
    def model_inputs(self, batch: dict[str, Any], device: torch.device) -> dict[str, torch.Tensor]:
        """Batch -> `forward` inputs; `lm_features` are the [mean; first-token] LM states [B, 2H]."""
        encoder = self._encoder[0].to(device)
        tokens = {
            k: v.to(device) for k, v in tokenize(self.tokenizer, batch["text"], self.max_tokens).items()
        }
        hidden = encoder(**tokens).last_hidden_state
        mask = tokens["attention_mask"]
        features = torch.cat([select_token(hidden, mask, "mean"), select_token(hidden, mask, "cls")], dim=-1)
        inputs = {name: batch[name].to(device) for name in ("audio", "visual", "length")}
        inputs["lm_features"] = features.float()
        return inputs

    def features(self, dataset: AlignedDataset, device: torch.device, batch_size: int) -> np.ndarray:
        """Probe features [N, 2H] of a split, in dataset order."""
        batches = iterate_batches(dataset, batch_size)
        return torch.cat([self.model_inputs(b, device)["lm_features"].cpu() for b in batches]).numpy()

    @classmethod
    def fit(
        cls,
        settings: dict[str, Any],
        datasets: dict[str, AlignedDataset],
        dims: dict[str, int | None],
        device: torch.device,
    ) -> tuple[TextProbe, dict[str, Any]]:
        """Fit on `datasets['train']`, choose alpha on `datasets['valid']` by `train.select` (`dims`: the
        data's, as `build_model` takes them); return the probe and a report: `chosen` (the alpha, in
        words), `train_mae`, `valid_by_alpha` (scores)."""
        probe = build_model(settings, dims)
        batch_size, metric = settings["train"]["batch_size"], settings["train"]["select"]
        x_train, x_valid = (probe.features(datasets[s], device, batch_size) for s in ("train", "valid"))
        y_train, y_valid = (datasets[s].tensors["label"].numpy() for s in ("train", "valid"))
        solutions = ridge_path(x_train, y_train, ALPHAS)
        scores = {
            alpha: regression_metrics(y_valid, x_valid.astype(np.float64) @ w + b)[metric]
            for alpha, (w, b) in zip(ALPHAS, solutions, strict=True)
        }
        sign = 1.0 if metric in LOWER_IS_BETTER else -1.0  # NaN scores (e.g. constant corr) never win
        best = min(ALPHAS, key=lambda alpha: np.nan_to_num(sign * scores[alpha], nan=np.inf))
        weight, bias = solutions[ALPHAS.index(best)]
        probe.weight.copy_(torch.from_numpy(weight))
        probe.bias.fill_(bias)
        probe.alpha.fill_(best)
        train_mae = float(np.abs(x_train.astype(np.float64) @ weight + bias - y_train).mean())
        report = {"chosen": f"alpha={best:g}", "train_mae": train_mae, "valid_by_alpha": scores}
        return probe.to(device), report
