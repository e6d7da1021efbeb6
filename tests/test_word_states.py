"""Per-word language states (issue 16, `model.text_steps`): word pieces pooled back to their words, the
word-sequential baselines reading one state per word step (fine-tuned and cached), the features stage's
float16 cache read lazily per batch, and its z-score statistics."""

from __future__ import annotations

import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch
from helpers import DA, DV, H, T, make_batch

from pipeline.data.dataset import load_split
from pipeline.data.loader import WordStates
from pipeline.data.normalize import fit_word_stats
from pipeline.errors import DataError
from pipeline.features import WORDS, write_features
from pipeline.inference import load_datasets
from pipeline.models import WORD_STEP_FAMILIES, build_model
from pipeline.models.language import load_language_model, pool_words, tokenize, tokenize_words
from pipeline.settings import resolve_settings

CPU = torch.device("cpu")
# Texts whose words split into several word pieces ("unbelievably" -> un ##bel ##ie ##va ##bly).
WORDED = ["unbelievably good filmmaking", "not bad", "the worst film i have ever seen", "wow"]
# The module each family's language input enters first (its word steps are read off its input).
LANGUAGE_LAYER = {
    "ef_lstm": "lstm",
    "lf_lstm": "lstms.l",
    "tfn": "subnets.l.lstm",
    "lmf": "subnets.l.lstm",
    "mfn": "cells.l",
    "mult": "project.l",
}


def pieces_by_hand(
    lm: torch.nn.Module, tokenizer, text: str, steps: int, max_tokens: int = 512
) -> torch.Tensor:
    """[steps, H]: the mean LM state of each word's pieces, the pieces located by counting each word's
    `tokenizer.tokenize` pieces after [CLS] (independently of `word_ids`), those cut by `max_tokens` left
    out; zeros beyond the words and for a word with no piece left."""
    with torch.no_grad():
        hidden = lm(**tokenize(tokenizer, [text], max_tokens)).last_hidden_state[0]
    out = torch.zeros(steps, hidden.shape[-1])
    start, end = 1, hidden.shape[0] - 1  # pieces sit between [CLS] and [SEP]
    for step, word in enumerate(text.split()[:steps]):
        count = len(tokenizer.tokenize(word))
        if start < end:
            out[step] = hidden[start : min(start + count, end)].mean(0)
        start += count
    return out


def test_word_pieces_pool_back_to_their_words() -> None:
    lm, tokenizer = load_language_model("tiny")
    lm.eval()
    assert len(tokenizer.tokenize("unbelievably")) > 1  # the check needs a word of several pieces
    words = tokenize_words(tokenizer, WORDED, 64)
    plain = tokenize(tokenizer, WORDED, 64)
    assert torch.equal(words["input_ids"], plain["input_ids"])  # the sentence vectors' pieces are unchanged
    with torch.no_grad():
        hidden = lm(input_ids=words["input_ids"], attention_mask=words["attention_mask"]).last_hidden_state
    pooled = pool_words(hidden, words["word_index"], steps=5)
    for row, text in enumerate(WORDED):
        torch.testing.assert_close(pooled[row], pieces_by_hand(lm, tokenizer, text, 5), rtol=1e-5, atol=1e-5)
    assert (pooled[2, 5:] == 0).all() and (pooled[3, 1:] == 0).all()  # beyond `steps` / beyond the words
    short = tokenize_words(tokenizer, WORDED[:1], 4)  # [CLS] un ##bel [SEP]: words 2 and 3 lost
    with torch.no_grad():
        cut = pool_words(lm(**tokenize(tokenizer, WORDED[:1], 4)).last_hidden_state, short["word_index"], 3)
    assert cut[0, 0].abs().sum() > 0 and (cut[0, 1:] == 0).all()
    torch.testing.assert_close(cut[0], pieces_by_hand(lm, tokenizer, WORDED[0], 3, max_tokens=4))


def _language_seen(model: torch.nn.Module, arch: str, inputs: dict) -> torch.Tensor:
    """The language input [B, T', H'] entering the family's first language layer in one forward pass."""
    seen: list[torch.Tensor] = []

    def hook(_module, args) -> None:
        x = args[0]
        if isinstance(x, torch.nn.utils.rnn.PackedSequence):
            x = torch.nn.utils.rnn.pad_packed_sequence(x, batch_first=True)[0]
        seen.append(x.transpose(1, 2) if arch == "mult" else x)

    handle = model.get_submodule(LANGUAGE_LAYER[arch]).register_forward_pre_hook(hook)
    try:
        with torch.no_grad():
            model(**inputs)
    finally:
        handle.remove()
    states = torch.stack(seen, dim=1) if arch == "mfn" else seen[0]  # MFN's cell runs once per step
    return states[..., : model.lm_hidden]  # EF-LSTM: [language; audio; visual]


@pytest.mark.parametrize("mode", ["finetune", "frozen"])
@pytest.mark.parametrize("arch", WORD_STEP_FAMILIES)
def test_word_sequential_baselines_read_each_words_pooled_pieces(arch: str, mode: str) -> None:
    overrides = {"model.arch": arch, "loss.contrastive": "none", "model.lm_mode": mode}
    if mode == "finetune":
        overrides["model.language_model"] = "tiny"
    torch.manual_seed(0)
    model = build_model(
        resolve_settings(None, overrides), {"audio_dim": DA, "visual_dim": DV, "seq_len": T, "lm_hidden": H}
    ).eval()
    batch = make_batch(4)
    batch["text"] = WORDED
    batch["length"] = torch.tensor([min(len(t.split()), T) for t in WORDED])
    seen = _language_seen(model, arch, model.model_inputs(batch, CPU))
    for row, text in enumerate(WORDED):
        n = int(batch["length"][row])
        if mode == "finetune":
            expected = pieces_by_hand(model.language_model, model.tokenizer, text, T)[:n]
        else:
            expected = batch["lm_words"][row, :n]
        torch.testing.assert_close(seen[row, :n], expected, rtol=1e-5, atol=1e-5)
    assert not torch.allclose(seen[2, 0], seen[2, 1])  # the language input differs across the steps


def test_sentence_steps_keep_the_repeated_sentence_vector() -> None:
    settings = resolve_settings(
        None, {"model.arch": "mult", "loss.contrastive": "none", "model.text_steps": "sentence"}
    )
    model = build_model(settings, {"audio_dim": DA, "visual_dim": DV, "seq_len": T, "lm_hidden": H}).eval()
    batch = make_batch(4)
    seen = _language_seen(model, "mult", model.model_inputs(batch, CPU))
    torch.testing.assert_close(seen, batch["lm_features"][:, None, :].expand(-1, T, -1))


def _settings(arch: str, **overrides) -> dict:
    return resolve_settings(
        None,
        {
            "model.arch": arch,
            "loss.contrastive": "none",
            "model.language_model": "tiny",
            "model.max_text_tokens": 16,
            "data.normalize": "none",
            **overrides,
        },
    )


@pytest.fixture(scope="module")
def tiny_features(synthetic, tmp_path_factory) -> Path:
    """The synthetic data's features file made with the tiny LM, cut at 16 word pieces."""
    return write_features(
        synthetic["data"], tmp_path_factory.mktemp("words") / "tiny.h5", "tiny", "mean", max_tokens=16
    )


def test_features_stage_caches_per_word_states_read_lazily_per_batch(synthetic, tiny_features) -> None:
    out = tiny_features
    valid = load_split(synthetic["data"], "valid")
    steps = valid["audio"].shape[1]
    with h5py.File(out, "r") as handle:
        stored = handle[f"valid/{WORDS}"]
        assert stored.dtype == np.float16 and stored.chunks == (1, steps, 32)
        assert stored.shape == (len(valid["id"]), steps, 32)
    datasets, _ = load_datasets(_settings("ef_lstm"), synthetic["data"], ("valid",), out)
    words = datasets["valid"].words
    assert isinstance(words, WordStates) and words.source == (out, f"valid/{WORDS}")  # lazy, not an array
    lm, tokenizer = load_language_model("tiny")
    lm.eval()
    batch = datasets["valid"][[3, 0]]
    for position, row in enumerate([3, 0]):  # a batch in any order; the cache cut at 16 word pieces
        expected = pieces_by_hand(lm, tokenizer, valid["text"][row], steps, max_tokens=16)
        torch.testing.assert_close(batch["lm_words"][position], expected, rtol=2e-3, atol=2e-3)
    in_memory, _ = load_datasets(_settings("ef_lstm"), synthetic["data"], ("valid",))  # no features file
    torch.testing.assert_close(in_memory["valid"][[3, 0]]["lm_words"], batch["lm_words"])
    hycon, _ = load_datasets(_settings("hycon"), synthetic["data"], ("valid",), out)
    assert "lm_words" not in hycon["valid"][0]  # HyCon reads the sentence vectors only


def test_per_word_states_are_z_scored_with_train_statistics(synthetic, tiny_features) -> None:
    datasets, info = load_datasets(
        _settings("mfn", **{"data.normalize": "zscore"}), synthetic["data"], ("train", "valid"), tiny_features
    )
    assert {"words_mean", "words_std"} <= set(info.normalization)
    train = datasets["train"][list(range(len(datasets["train"])))]
    valid = torch.arange(train["lm_words"].shape[1])[None, :] < train["length"][:, None]
    np.testing.assert_allclose(train["lm_words"][valid].mean(0).numpy(), 0, atol=1e-3)
    np.testing.assert_allclose(train["lm_words"][valid].std(0).numpy(), 1, atol=1e-2)
    assert (train["lm_words"][~valid] == 0).all()


def test_fit_word_stats_streams_the_valid_words() -> None:
    rng = np.random.default_rng(0)
    values = rng.normal(2.0, 3.0, (7, 5, 4)).astype(np.float16)
    length = np.array([0, 1, 5, 2, 3, 4, 5])
    stats = fit_word_stats(WordStates(values, length), chunk=3)
    flat = values.astype(np.float64)[np.arange(5)[None, :] < length[:, None]]
    np.testing.assert_allclose(stats["words_mean"], flat.mean(0), rtol=1e-5)
    np.testing.assert_allclose(stats["words_std"], flat.std(0), rtol=1e-5)


def test_a_features_file_without_per_word_states_is_refused(synthetic, tiny_features, tmp_path) -> None:
    out = Path(shutil.copy(tiny_features, tmp_path / "tiny.h5"))
    with h5py.File(out, "a") as handle:
        del handle[f"valid/{WORDS}"]
    with pytest.raises(DataError, match=r"tiny\.h5: 'valid/words' must hold per-word states .*text_steps"):
        load_datasets(_settings("lf_lstm"), synthetic["data"], ("valid",), out)
    load_datasets(
        _settings("lf_lstm", **{"model.text_steps": "sentence"}), synthetic["data"], ("valid",), out
    )


def test_a_non_finite_cached_state_is_refused_as_read_naming_the_segment(
    synthetic, tiny_features, tmp_path
) -> None:
    """Per-word states are read lazily, so they are checked as read (the sentence vectors when loaded): a
    NaN written into one segment's states stops the z-score statistics with one line naming the file, the
    split and the segment, instead of reaching the model."""
    out = Path(shutil.copy(tiny_features, tmp_path / "tiny.h5"))
    train_ids = load_split(synthetic["data"], "train")["id"]
    with h5py.File(out, "a") as handle:
        handle[f"train/{WORDS}"][5, 0, 3] = np.nan  # h5py recomputes the chunk's checksum
    with pytest.raises(DataError, match=r"^.*tiny\.h5: 'train/words' has NaN/inf values") as err:
        load_datasets(_settings("mfn", **{"data.normalize": "zscore"}), synthetic["data"], ("train",), out)
    assert f"first: {train_ids[5]}" in str(err.value)
