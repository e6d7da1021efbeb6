"""Cache frozen language-model features: run the LM once over every split's text (stage `features`).

Output `data/features/<dataset>-<lm>.h5`: per split a group with `id` (str [N]), `features` (float32 [N, H],
the sentence vectors HyCon and the text probe read) and `words` (float16 [N, T, H], the language model's
states pooled per aligned word, `pool_words`: the word-sequential baselines' input with `model.text_steps:
words`; one compressed HDF5 chunk per segment, so that a batch reads only its own segments and padding costs
little space); root attributes `model` (the `model.language_model` name), `token` (`model.text_token`
resolved), `max_tokens` (`model.max_text_tokens`), `hidden` (H) and `data` (the aligned file's name); each
group's attribute `texts` is a digest of the split's ids and texts (`text_digest`). Training in frozen mode
matches these vectors to its samples by id and refuses a file made for another LM, token or truncation, or
from other texts (an aligned file rebuilt since, e.g. with another `--seq-len`). Numeric datasets carry
HDF5's checksum (`pipeline.data.dataset.create_dataset`: make any new one there).
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import torch
from tqdm import tqdm

from pipeline.choices import TEXT_TOKENS
from pipeline.data.dataset import (
    SPLITS,
    check_values,
    create_dataset,
    load_split,
    open_hdf5,
    read_strings,
    validate_aligned,
    warn_unchecked,
)
from pipeline.data.loader import WordStates
from pipeline.device import resolve_device
from pipeline.errors import ConfigError, DataError
from pipeline.io import atomic_path, check_output, digest_json
from pipeline.models.language import (
    load_language_model,
    pool_words,
    select_token,
    tokenize,
    tokenize_words,
)
from pipeline.settings import AUTO_TEXT_TOKEN, DEFAULTS

log = logging.getLogger(__name__)


def text_digest(ids: np.ndarray, texts: np.ndarray) -> str:
    """Digest of a split's ids and texts: what its features were computed from."""
    return digest_json([np.asarray(ids).tolist(), np.asarray(texts).tolist()])


WORDS = "words"  # a split group's per-word states [N, T, H]
WORD_DTYPE = np.float16  # half the space of float32; the cast back is exact


@torch.no_grad()
def encode_batches(
    lm: torch.nn.Module,
    tokenizer: Any,
    texts: list[str],
    token: str,
    max_tokens: int,
    batch_size: int = 64,
    device: torch.device | None = None,
    steps: int | None = None,
) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray | None]]:
    """Frozen LM outputs batch by batch, in eval mode without gradients: (rows [b] in increasing order,
    sentence vectors [b, H] float32, per-word states [b, steps, H] float16 or None without `steps`).

    Texts are processed in order of length so that padding (and time) stays small. With `steps`, the texts
    are tokenised as pre-split words (`tokenize_words`: the same word pieces as `tokenize`), and one
    forward pass gives both outputs.
    """
    device = device or torch.device("cpu")
    lm.eval().to(device)
    order = np.argsort([len(t) for t in texts], kind="stable")
    for start in tqdm(
        range(0, len(texts), batch_size), desc="features", unit="batch", leave=False, disable=None
    ):
        rows = np.sort(order[start : start + batch_size])
        batch_texts = [texts[i] for i in rows]
        if steps is None:
            inputs = tokenize(tokenizer, batch_texts, max_tokens)
        else:
            inputs = tokenize_words(tokenizer, batch_texts, max_tokens)
        inputs = {k: v.to(device) for k, v in inputs.items()}
        word_index = inputs.pop("word_index", None)
        hidden = lm(**inputs).last_hidden_state
        sentence = select_token(hidden, inputs["attention_mask"], token).float().cpu().numpy()
        words = None
        if steps is not None:
            words = pool_words(hidden.float(), word_index, steps).cpu().numpy().astype(WORD_DTYPE)
        yield rows, sentence, words


def compute_features(
    texts: dict[str, list[str]],
    model_name: str,
    token: str,
    max_tokens: int,
    batch_size: int = 64,
    device: torch.device | None = None,
    steps: int | None = None,
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """({split: features [N, H]}, {split: per-word states [N, steps, H]}) for the texts of each split,
    computed in memory with the frozen LM `model_name`; the second is empty without `steps`."""
    lm, tokenizer = load_language_model(model_name)
    features, words = {}, {}
    for split, split_texts in texts.items():
        log.info("encoding %d %s texts with %s (%s token)", len(split_texts), split, model_name, token)
        hidden = lm.config.hidden_size
        features[split] = np.zeros((len(split_texts), hidden), dtype=np.float32)
        if steps is not None:
            words[split] = np.zeros((len(split_texts), steps, hidden), dtype=WORD_DTYPE)
        for rows, sentence, word_states in encode_batches(
            lm, tokenizer, split_texts, token, max_tokens, batch_size, device, steps
        ):
            features[split][rows] = sentence
            if steps is not None:
                words[split][rows] = word_states
    return features, words


def write_features(
    data_path: str | Path,
    out_path: str | Path,
    model_name: str,
    token: str = AUTO_TEXT_TOKEN["frozen"],
    max_tokens: int = DEFAULTS["model"]["max_text_tokens"],
    batch_size: int = 64,
    device: torch.device | None = None,
) -> Path:
    """Compute the features and per-word states of every split and write them atomically to `out_path`.

    The per-word states are written batch by batch (never a whole split in memory: about 1.2 GB for
    CMU-MOSEI's train split at T = 50, H = 768)."""
    if token not in TEXT_TOKENS:
        raise ConfigError(f"--token must be one of {', '.join(TEXT_TOKENS)}; got {token!r}")
    check_output(out_path)
    steps = validate_aligned(data_path)["seq_len"]
    arrays = {split: load_split(data_path, split) for split in SPLITS}
    texts = {split: a["text"].tolist() for split, a in arrays.items()}
    lm, tokenizer = load_language_model(model_name)
    hidden = lm.config.hidden_size
    out_path = Path(out_path)
    with atomic_path(out_path) as tmp, h5py.File(tmp, "w") as handle:
        for split in SPLITS:
            log.info("encoding %d %s texts with %s (%s token)", len(texts[split]), split, model_name, token)
            n = len(texts[split])
            group = handle.create_group(split)
            create_dataset(group, "id", data=arrays[split]["id"].astype(object), dtype=h5py.string_dtype())
            features = create_dataset(group, "features", shape=(n, hidden), dtype=np.float32)
            words = create_dataset(
                group, WORDS, shape=(n, steps, hidden), dtype=WORD_DTYPE, chunks=(1, steps, hidden),
                compression="lzf",
            )  # fmt: skip
            for rows, sentence, word_states in encode_batches(
                lm, tokenizer, texts[split], token, max_tokens, batch_size, device, steps
            ):
                features[rows] = sentence
                words[rows] = word_states
            group.attrs["texts"] = text_digest(arrays[split]["id"], texts[split])
        handle.attrs.update(
            {
                "model": model_name,
                "token": token,
                "max_tokens": max_tokens,
                "hidden": hidden,
                "data": Path(data_path).name,
            }
        )
    log.info("wrote %s", out_path)
    return out_path


def load_features(
    path: str | Path,
    ids: dict[str, np.ndarray],
    model_name: str,
    token: str,
    max_tokens: int,
    *,
    texts: dict[str, np.ndarray],
) -> dict[str, np.ndarray]:
    """Cached features per split, in the order of `ids` ({split: ids of the aligned file}; `texts` alike).

    Raises DataError naming the file when it is missing or malformed, was made with another LM, token or
    truncation, or its ids or texts differ from the aligned file's.
    """
    path = Path(path)
    if not path.is_file() or not h5py.is_hdf5(path):
        raise DataError(
            f"{path}: features file missing or not HDF5 (make it with `python -m pipeline features`)"
        )
    with open_hdf5(path, "features file") as handle:
        warn_unchecked(path, handle)
        made = {key: handle.attrs.get(key) for key in ("model", "token", "max_tokens")}
        wanted = {"model": model_name, "token": token, "max_tokens": max_tokens}
        for key, value in wanted.items():
            if made[key] is None or str(made[key]) != str(value):
                raise DataError(
                    f"{path}: features were made with {key}={made[key]!r}, the settings ask for {value!r}; "
                    "recompute them with `python -m pipeline features`"
                )
        result = {}
        for split, split_ids in ids.items():
            if split not in handle or "id" not in handle[split] or "features" not in handle[split]:
                raise DataError(f"{path}: missing group '{split}' with datasets 'id' and 'features'")
            stored = read_strings(handle[split]["id"])
            if stored.shape != split_ids.shape or (stored != split_ids).any():
                raise DataError(f"{path}: '{split}/id' differs from the aligned data's ids (stale features?)")
            try:
                feats = np.asarray(handle[split]["features"][()], dtype=np.float32)
            except OSError as err:  # a failed checksum, a damaged chunk
                raise DataError(f"{path}: damaged '{split}/features' ({err}); rebuild the file") from None
            if feats.ndim != 2 or len(feats) != len(split_ids):
                raise DataError(f"{path}: '{split}/features' must be [N={len(split_ids)}, H]")
            check_values(str(path), split, split_ids, "features", feats)
            if handle[split].attrs.get("texts") != text_digest(split_ids, texts[split]):
                raise DataError(
                    f"{path}: '{split}' features were computed from other texts than the aligned data's (it "
                    "was realigned since?); rebuild them with `python -m pipeline features --data <aligned "
                    f"file> --out {path}`"
                )
            result[split] = feats
    return result


def open_word_states(
    path: str | Path,
    lengths: dict[str, np.ndarray],
    steps: int,
    hidden: int,
    ids: dict[str, np.ndarray] | None = None,
) -> dict[str, WordStates]:
    """Lazy readers of the per-word states of each split in `lengths` ({split: valid word counts [N]};
    `ids` {split: segment ids [N]} name a segment whose states are refused as read), after checking each
    split's `words` dataset is [N, steps, hidden] (call `load_features` first: it checks the file's ids,
    texts, LM, token and truncation). Raises DataError naming the file otherwise (a file
    written before the per-word states were cached included)."""
    path = Path(path)
    with open_hdf5(path, "features file") as handle:
        for split, length in lengths.items():
            stored = handle[split].get(WORDS)
            want = (len(length), steps, hidden)
            if not isinstance(stored, h5py.Dataset) or stored.shape != want:
                found = "none" if stored is None else getattr(stored, "shape", "not a dataset")
                raise DataError(
                    f"{path}: '{split}/{WORDS}' must hold per-word states {list(want)} (found {found}); "
                    "recompute the features with `python -m pipeline features`, or set "
                    "model.text_steps=sentence"
                )
    return {
        split: WordStates((path, f"{split}/{WORDS}"), length, ids=None if ids is None else ids[split])
        for split, length in lengths.items()
    }


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """CLI of the `features` stage."""
    parser.add_argument("--data", required=True, help="aligned HDF5 (data/aligned/<dataset>.h5)")
    parser.add_argument("--model", default="minilm", help="minilm | tiny | hub name | local path")
    parser.add_argument(
        "--token",
        default=AUTO_TEXT_TOKEN["frozen"],
        choices=TEXT_TOKENS,
        help="language vector (model.text_token, `auto` resolved: mean for a frozen model)",
    )
    parser.add_argument("--max-tokens", type=int, default=DEFAULTS["model"]["max_text_tokens"])
    parser.add_argument("--out", required=True, help="output HDF5 (data/features/<dataset>-<lm>.h5)")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))


def run(args: argparse.Namespace) -> None:
    """Entry of `python -m pipeline features`."""
    if args.batch_size < 1 or args.max_tokens < 3:
        raise ConfigError("--batch-size must be >= 1 and --max-tokens >= 3")
    write_features(
        args.data,
        args.out,
        args.model,
        args.token,
        args.max_tokens,
        args.batch_size,
        resolve_device(args.device),
    )
