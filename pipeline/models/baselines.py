"""The baseline model families by `model.arch` name (issue 8); `pipeline.models` adds HyCon to them."""

from __future__ import annotations

from torch import nn

from pipeline.models.lstm import EFLSTM, LFLSTM
from pipeline.models.mag_bert import MAGBert
from pipeline.models.mfn import MFN
from pipeline.models.mult import MulT
from pipeline.models.probe import TextProbe
from pipeline.models.tensor_fusion import LMF, TFN
from pipeline.models.text_only import TextOnly

BASELINES: dict[str, type[nn.Module]] = {
    "ef_lstm": EFLSTM,
    "lf_lstm": LFLSTM,
    "tfn": TFN,
    "lmf": LMF,
    "mfn": MFN,
    "mult": MulT,
    "mag_bert": MAGBert,
    "text_probe": TextProbe,
    "text_only": TextOnly,
}
# Families trained by the SGD loop; the others are fitted in closed form (`fit` classmethod).
TRAINED: tuple[str, ...] = tuple(name for name, cls in BASELINES.items() if not hasattr(cls, "fit"))
