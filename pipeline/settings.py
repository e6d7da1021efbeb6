"""Settings of one training run: defaults, overrides, validation, a stable hash and the settings file.

The nested layout is the contract of docs/architecture.md section 3. Every key has a default in `DEFAULTS`;
experiments override keys with dotted names (`{"loss.alpha": 0.5}`); unknown keys and out-of-range values
raise `ConfigError` naming the key, before any work starts.

Keys added beyond the architecture document (each documented in `DEFAULTS`):
`model.arch`, `model.positional`, `model.max_text_tokens`, `model.text_steps`, the baselines' dropouts
(`model.*_dropout*`), `train.keep_last`, `train.checkpoint_dtype`, `train.schedule`, `train.warmup`,
`data.normalize`. The baselines (`model.arch` other than hycon) have their published sizes fixed in their
modules and read their own dropouts: HyCon's architecture keys do not apply to them (text_only reads
`model.d`, `head_hidden`, `dropout` and `nonneg`; `pipeline.presets.family_reads` lists what each family
reads), and they need `loss.contrastive=none` (no unimodal representations to contrast). The training
settings of each family's reference are its preset (`pipeline.presets`), applied by the workflow's grid,
not by `resolve_settings`.
"""

from __future__ import annotations

import contextlib
import difflib
import json
import math
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml

from pipeline.choices import CHOICES
from pipeline.errors import ConfigError
from pipeline.io import atomic_path, digest_json
from pipeline.models import contrastive_conflict, lm_mode_conflict

DEFAULTS: dict[str, dict[str, Any]] = {
    "model": {
        "arch": "hycon",  # model family: hycon | a baseline of pipeline/models (ef_lstm, tfn, mag_bert, ...)
        # minilm (bundled offline all-MiniLM-L6-v2) | tiny (random small BERT, tests) | hub name | local path
        "language_model": "minilm",
        "lm_mode": "frozen",  # frozen (cached features) | finetune (the paper's)
        # auto (mean when frozen, cls when fine-tuned: text_token_of) | mean | cls | last (the paper's
        # literal "last time step": the final non-padding token, [SEP]); docs/language-vector.md
        "text_token": "auto",
        "max_text_tokens": 128,  # word pieces fed to the language model, [CLS] and [SEP] included
        # language input of the word-sequential baselines (models.WORD_STEP_FAMILIES; the others ignore it):
        # words (LM states pooled per aligned word, one per step, as their references read word vectors) |
        # sentence (the sentence vector repeated at every step, the earlier behaviour)
        "text_steps": "words",
        "d": 50,  # unimodal representation size (paper: 50); also the acoustic/visual Transformer width
        "layers": 1,  # Transformer layers, audio and visual encoders
        "heads": 2,  # attention heads; must divide d
        "ff": 64,  # Transformer feed-forward size
        "dropout": 0.1,
        "positional": "sinusoidal",  # sinusoidal | learned positional encoding of the audio/visual encoders
        "nonneg": "relu",  # relu | softplus | none: keeps cosine similarities in [0, 1]
        "fusion": "add",  # add | concat | tensor | graph
        "head_hidden": 64,  # hidden units of the regression head
        # The baselines' own dropouts, read by their families only (HyCon and text_only read `dropout`);
        # defaults: the values of the reference each family's sizes come from (pipeline/presets.py names it).
        "ef_lstm_dropout": 0.5,  # EF-LSTM: between its LSTM layers and around its hidden layer
        "lf_lstm_dropout": 0.2,  # LF-LSTM: on each modality's final LSTM state
        "tfn_dropout": 0.3,  # TFN: the three unimodal sub-networks
        "tfn_post_dropout": 0.5,  # TFN: on the fusion tensor, before the post-fusion layers
        "lmf_dropout": 0.3,  # LMF: the three unimodal sub-networks
        "mfn_attention_dropout": 0.2,  # MFN: the Delta-memory attention network (NN1)
        "mfn_proposal_dropout": 0.0,  # MFN: the memory proposal network (NN2)
        "mfn_retain_dropout": 0.7,  # MFN: the retain gate (gamma1)
        "mfn_update_dropout": 0.5,  # MFN: the update gate (gamma2)
        "mfn_out_dropout": 0.0,  # MFN: the output network
        "mult_attn_dropout": 0.1,  # MulT: attention over language (keys of the l sources, the l memory)
        "mult_attn_dropout_a": 0.0,  # MulT: attention over acoustic keys
        "mult_attn_dropout_v": 0.0,  # MulT: attention over visual keys
        "mult_relu_dropout": 0.1,  # MulT: inside the feed-forward blocks
        "mult_res_dropout": 0.1,  # MulT: on the residual branches
        "mult_embed_dropout": 0.25,  # MulT: on the scaled, position-encoded inputs (and the language input)
        "mult_out_dropout": 0.0,  # MulT: inside the output residual block
        "mag_bert_dropout": 0.5,  # MAG-BERT: on the gated word-piece embeddings
    },
    "loss": {
        "contrastive": "hycon",  # hycon | none | triplet | hard_triplet | npair | contrastive
        "lambda_iamcl": 1.0,
        "lambda_iemcl": 1.0,
        "lambda_scl": 1.0,
        "alpha": 0.8,  # modality margin, in (0, 1]
        "refine": True,
        "zero_class": "nonneg",  # class of a zero label: nonneg (positive class) | negative
        # sum (Eq. 13: summed over the batch's samples and modalities, the paper's) | mean (per anchor)
        "reduction": "mean",
    },
    "train": {
        "batch_size": 32,
        "epochs": 20,
        "lr_lm": 1.0e-5,  # language model (paper)
        "lr": 1.0e-3,  # everything else
        "weight_decay": 0.0,  # Adam's L2 term on the layers trained at `lr` (not the language model)
        "patience": 5,  # early stopping: epochs without improvement of the selection metric
        "select": "mae",  # validation metric for model selection: mae (lower is better) | corr | acc7 | ...
        "grad_clip": 1.0,  # max gradient norm; 0 disables clipping
        # none (constant rates) | linear_warmup: each rate rises linearly from 0 over the first `warmup`
        # fraction of the planned steps (epochs x batches per epoch), then falls linearly to 0 at the last
        # (MAG-BERT's original schedule; pipeline/presets.py)
        "schedule": "none",
        "warmup": 0.1,  # fraction of the planned steps that warm up (train.schedule: linear_warmup)
        "amp": True,  # mixed precision, CUDA only
        "keep_last": False,  # keep last.pt after a completed run (it allows extending `epochs` later)
        # precision of the selected weights in model.pt: float32 (exact) | float16 (half the file; the
        # test metrics are those of the stored weights, measured in docs/benchmarks.md)
        "checkpoint_dtype": "float32",
    },
    "data": {
        # zscore: per-dimension mean/std of the train split, stored in model.pt (pipeline/data/normalize.py)
        # | none: the features as aligned
        "normalize": "zscore",
    },
}

# `model.text_token: auto` by `model.lm_mode`: a frozen sentence-embedding model is read with the pooling it
# was trained with (all-MiniLM-L6-v2: mean); a fine-tuned BERT with the first token, the convention of the
# MSA literature (MAG-BERT, MISA, Self-MM). Measured on real CMU-MOSI text: docs/language-vector.md.
AUTO_TEXT_TOKEN: dict[str, str] = {"frozen": "mean", "finetune": "cls"}

# Settings that select the cached language features: the `features` stage's inputs and the cache's key.
FEATURE_KEYS: tuple[str, ...] = ("model.language_model", "model.text_token", "model.max_text_tokens")
# Settings a search cannot vary: the cached features and whether the language model is fine-tuned.
SEARCH_FIXED_KEYS: tuple[str, ...] = ("model.lm_mode", *FEATURE_KEYS)

# Selection metrics where lower is better; all others are maximised.
LOWER_IS_BETTER = frozenset({"mae"})


def _positive(x: float) -> bool:
    return x > 0


def _non_negative(x: float) -> bool:
    return x >= 0


def _probability(x: float) -> bool:
    return 0 <= x < 1


# dotted key -> (predicate, wording of the allowed range)
RANGES: dict[str, tuple[Callable[[Any], bool], str]] = {
    "model.max_text_tokens": (lambda x: 3 <= x <= 512, "in [3, 512] (BERT-family position embeddings)"),
    "model.d": (_positive, "> 0"),
    "model.layers": (_positive, "> 0"),
    "model.heads": (_positive, "> 0"),
    "model.ff": (_positive, "> 0"),
    "model.head_hidden": (_positive, "> 0"),
    # every dropout probability: HyCon's `model.dropout` and the baselines' `model.*_dropout*`
    **{f"model.{name}": (_probability, "in [0, 1)") for name in DEFAULTS["model"] if "dropout" in name},
    "loss.alpha": (lambda x: 0 < x <= 1, "in (0, 1]"),
    "loss.lambda_iamcl": (_non_negative, ">= 0"),
    "loss.lambda_iemcl": (_non_negative, ">= 0"),
    "loss.lambda_scl": (_non_negative, ">= 0"),
    "train.batch_size": (lambda x: x >= 2, ">= 2 (contrastive pairs need two samples)"),
    "train.epochs": (_positive, "> 0"),
    "train.lr_lm": (_positive, "> 0"),
    "train.lr": (_positive, "> 0"),
    "train.weight_decay": (_non_negative, ">= 0"),
    "train.patience": (_positive, "> 0"),
    "train.grad_clip": (_non_negative, ">= 0"),
    "train.warmup": (_probability, "in [0, 1)"),
}


def _flatten(tree: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Dotted keys of a nested mapping; keys may themselves be dotted (`{"loss.alpha": 0.5}`)."""
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        if not isinstance(key, str):
            raise ConfigError(f"settings key {key!r} (under {prefix or 'top level'}) is not a string")
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and name.count(".") == 0:
            flat.update(_flatten(value, f"{name}."))
        else:
            flat[name] = value
    return flat


DEFAULT_FLAT: dict[str, Any] = _flatten(DEFAULTS)
DEFAULT_KEYS: tuple[str, ...] = tuple(DEFAULT_FLAT)


def _unknown_key(key: str) -> ConfigError:
    close = difflib.get_close_matches(key, DEFAULT_KEYS, n=1, cutoff=0.6)
    hint = f"; did you mean '{close[0]}'?" if close else f"; known keys: {', '.join(DEFAULT_KEYS)}"
    return ConfigError(f"unknown settings key '{key}'{hint}")


def _check_type(key: str, value: Any) -> Any:
    """Return `value` coerced to the type of the key's default (int -> float allowed), else raise."""
    default = DEFAULT_FLAT[key]
    if isinstance(default, bool):
        ok = isinstance(value, bool)
    elif isinstance(default, int):
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif isinstance(default, float):
        if isinstance(value, str):
            # YAML 1.1 (PyYAML, Snakemake's config loader) reads `1e-5` without a dot as a string.
            with contextlib.suppress(ValueError):
                value = float(value)
        ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
        value = float(value) if ok else value
    else:
        ok = isinstance(value, str) and value != ""
    if not ok:
        raise ConfigError(
            f"settings key '{key}' must be a {type(default).__name__} (default {default!r}), got {value!r}"
        )
    return value


def _validate(flat: dict[str, Any]) -> None:
    """Range, choice and cross-key checks; each error names the key."""
    for key, allowed in CHOICES.items():
        if flat[key] not in allowed:
            raise ConfigError(f"settings key '{key}' must be one of {', '.join(allowed)}; got {flat[key]!r}")
    for key, (ok, wording) in RANGES.items():
        if not ok(flat[key]):
            raise ConfigError(f"settings key '{key}' must be {wording}; got {flat[key]!r}")
    if flat["model.d"] % flat["model.heads"]:
        raise ConfigError(
            f"settings key 'model.heads' ({flat['model.heads']}) must divide 'model.d' ({flat['model.d']}),"
            " the width of the acoustic and visual Transformers"
        )
    arch = flat["model.arch"]
    for problem in (
        lm_mode_conflict(arch, flat["model.lm_mode"]),
        contrastive_conflict(arch, flat["loss.contrastive"]),
    ):
        if problem:
            raise ConfigError(f"settings: {problem}")


def _nest(flat: dict[str, Any]) -> dict[str, dict[str, Any]]:
    nested: dict[str, dict[str, Any]] = {section: {} for section in DEFAULTS}
    for key, value in flat.items():
        section, name = key.split(".", 1)
        nested[section][name] = value
    return nested


def resolve_settings(base: Mapping[str, Any] | None, overrides: Mapping[str, Any] | None = None) -> dict:
    """Merge `base` (nested or dotted) and then dotted `overrides` onto `DEFAULTS`, and validate.

    Returns a new nested dict with every key present; raises `ConfigError` naming the first bad key
    (unknown keys get a close-match suggestion).
    """
    flat = dict(DEFAULT_FLAT)
    for layer in (base or {}, overrides or {}):
        if not isinstance(layer, Mapping):
            raise ConfigError(f"settings must be a mapping of keys to values, got {type(layer).__name__}")
        for key, value in _flatten(layer).items():
            if key not in flat:
                raise _unknown_key(key)
            flat[key] = _check_type(key, value)
    _validate(flat)
    return _nest(flat)


def parse_sets(sets: list[str] | None) -> dict[str, Any]:
    """Parse `key=value` overrides; values are read as YAML (`0.5` -> float, `false` -> bool)."""
    overrides: dict[str, Any] = {}
    for item in sets or []:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"override {item!r} is not of the form key=value (e.g. loss.alpha=0.5)")
        try:
            overrides[key.strip()] = yaml.safe_load(raw)
        except yaml.YAMLError as err:
            raise ConfigError(f"override '{key.strip()}': value {raw!r} is not valid YAML ({err})") from err
    return overrides


def load_settings(path: str | Path | None, sets: list[str] | None = None) -> dict:
    """Read a YAML/JSON settings file (or none: defaults) and apply `key=value` overrides, validated.

    The overrides are validated together (in order, a later one winning), so overrides valid only together
    are accepted. An error is blamed on its source: the file's own keys on the file, an override on its
    `--set KEY=VALUE` (`_blamed_set`).
    """
    base: Any = {}
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"settings file {path} does not exist")
        try:
            text = path.read_text()
            base = (json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)) or {}
        except (yaml.YAMLError, json.JSONDecodeError) as err:
            raise ConfigError(f"settings file {path} is not valid YAML/JSON: {err}") from err
        if not isinstance(base, Mapping):
            raise ConfigError(f"settings file {path} must hold a mapping, got {type(base).__name__}")
        try:
            base = resolve_settings(base)
        except ConfigError as err:
            raise ConfigError(f"{path}: {err}") from err
    items = list(sets or [])
    for item in items:
        try:
            parse_sets([item])
        except ConfigError as err:
            raise ConfigError(f"--set {item}: {err}") from err
    try:
        return resolve_settings(base, parse_sets(items))
    except ConfigError as err:
        raise ConfigError(f"--set {_blamed_set(base, items, str(err))}: {err}") from err


def _blamed_set(base: Mapping[str, Any], items: list[str], message: str) -> str:
    """The `--set` argument an error of all `items` together is blamed on: the first whose addition to the
    ones before it gives that same error (a bad value, or the second half of a conflict), else all of them.

    The overrides are validated together, so `--set model.arch=ef_lstm --set loss.contrastive=none` works in
    either order even though the first alone conflicts with the base's contrastive loss.
    """
    for end in range(1, len(items) + 1):
        try:
            resolve_settings(base, parse_sets(items[:end]))
        except ConfigError as err:
            if str(err) == message:
                return items[end - 1]
    return " ".join(items)


def settings_hash(settings: Mapping[str, Any], exclude: tuple[str, ...] = ()) -> str:
    """Stable hex digest of resolved settings (key order independent); `exclude` drops dotted keys."""
    flat = {k: v for k, v in _flatten(resolve_settings(settings)).items() if k not in exclude}
    return digest_json(flat)


def text_token_of(model: Mapping[str, Any]) -> str:
    """The language vector a run reads: `model.text_token`, with `auto` resolved by `model.lm_mode`.

    The one place `auto` is resolved: the model, the features cache (its key and file) and the rerun
    logic all read the token through this function.
    """
    token = model["text_token"]
    return AUTO_TEXT_TOKEN[model["lm_mode"]] if token == "auto" else token


def feature_settings_of(settings: Mapping[str, Any]) -> dict[str, Any]:
    """The FEATURE_KEYS of resolved settings, by their short names (`language_model`, `text_token`, ...);
    `text_token` resolved (`text_token_of`)."""
    model = settings["model"]
    found = {key.split(".", 1)[1]: model[key.split(".", 1)[1]] for key in FEATURE_KEYS}
    return {**found, "text_token": text_token_of(model)}


def check_search_space(
    keys: Iterable[str], experiment: str | None = None, overrides: Mapping[str, Any] | None = None
) -> None:
    """ConfigError when a search space varies a SEARCH_FIXED_KEYS setting (they pick the cached features)
    or, searching `experiment`, a key its `overrides` set: a table row is searched only within what its
    variant leaves free (alpha_0.5 is alpha = 0.5; searching loss.alpha would make it another row)."""
    keys = set(keys)
    fixed = sorted(keys & set(SEARCH_FIXED_KEYS))
    if fixed:
        raise ConfigError(f"search.space cannot vary {', '.join(fixed)} (they select the cached features)")
    own = sorted(keys & set(_flatten(overrides or {})))
    if own:
        raise ConfigError(
            f"search.space varies {', '.join(own)}, which experiment '{experiment}' sets: a row is searched"
            " only over the keys its experiment leaves free; drop them from search.space"
        )


def write_settings(path: str | Path, settings: Mapping[str, Any]) -> None:
    """Write resolved run settings as YAML, atomically: the file `python -m pipeline train --config` reads.

    YAML rather than JSON because the settings loader parses with a YAML 1.1 reader, which takes JSON's
    `1e-05` for a string; PyYAML's own dump writes `1.0e-05`, which it reads back as a float.
    """
    with atomic_path(path) as tmp:
        tmp.write_text(yaml.safe_dump(dict(settings), sort_keys=False))
