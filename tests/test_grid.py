"""The grid's naming of searched settings, which the workflow's rules call instead of re-deriving it."""

from __future__ import annotations

import pytest

from pipeline.grid import (
    DEFAULT_CONFIG,
    experiment_seeds,
    experiment_settings,
    load_config,
    run_seeds,
    run_settings,
    searched_name,
    searched_of,
)


@pytest.fixture(scope="module")
def config() -> dict:
    config = load_config([DEFAULT_CONFIG])
    config["experiment_seeds"] = {"no_contrast": [7]}
    return config


def test_a_searched_name_leads_back_to_its_experiment_and_nothing_else_does(config):
    assert searched_of(config, searched_name("hycon")) == "hycon"
    assert searched_of(config, "hycon") is None
    assert searched_of(config, searched_name("not_an_experiment")) is None


def test_a_searched_setting_runs_the_search_seeds_and_an_experiment_its_own(config):
    config["search"]["seeds"] = [3, 4]
    assert run_seeds(config, searched_name("no_contrast")) == [3, 4]
    assert run_seeds(config, "no_contrast") == experiment_seeds(config, "no_contrast") == [7]
    assert run_seeds(config, "hycon") == list(config["seeds"])


def test_a_searched_setting_has_no_settings_before_its_search(config):
    assert run_settings(config, searched_name("hycon")) is None
    assert run_settings(config, "no_contrast") == experiment_settings(config, "no_contrast")
    assert run_settings(config, "no_contrast")["loss"]["contrastive"] == "none"
