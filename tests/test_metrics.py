"""regression_metrics on hand-made cases for each MMSA convention."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from pipeline.metrics import METRIC_KEYS, _weighted_f1, regression_metrics


def test_keys_and_plain_floats() -> None:
    result = regression_metrics([1.0, -1.0, 2.0], np.array([0.5, -0.5, 1.0]))
    assert tuple(result) == METRIC_KEYS
    assert all(type(v) is float for v in result.values())


def test_zero_label_separates_has0_from_non0() -> None:
    # sample 0 has label 0 (non-negative for has0, dropped by non0) and a negative prediction.
    # has0: truth >= 0 [T, T, F, T], pred >= 0 [F, T, F, F] -> samples 1, 2 right: 2/4
    # non0: samples 1..3, truth > 0 [T, F, T], pred > 0 [T, F, F] -> 2/3
    result = regression_metrics([0.0, 1.0, -1.0, 2.0], [-0.5, 0.8, -1.2, -0.1])
    assert result["acc2_has0"] == pytest.approx(0.5)
    assert result["acc2_non0"] == pytest.approx(2 / 3)


def test_zero_prediction() -> None:
    # A prediction of exactly 0 is non-negative for has0 (right here) but not positive for non0 (wrong).
    result = regression_metrics([1.0, 2.0], [0.0, 0.0])
    assert result["acc2_has0"] == 1.0 and result["f1_has0"] == 1.0
    assert result["acc2_non0"] == 0.0 and result["f1_non0"] == 0.0


def test_weighted_f1_by_hand() -> None:
    # truth classes [1, 1, 1, 0, 0], predicted [1, 1, 1, 1, 0]:
    # class 1: TP 3, FP 1, FN 0 -> P 3/4, R 1, F1 6/7, support 3
    # class 0: TP 1, FP 0, FN 1 -> P 1, R 1/2, F1 2/3, support 2
    # weighted F1 = (3 * 6/7 + 2 * 2/3) / 5 = 82/105; accuracy 4/5. No zero label: has0 == non0.
    result = regression_metrics([1.0, 2.0, 0.5, -1.0, -2.0], [0.3, 1.0, 2.0, 0.2, -1.0])
    for kind in ("has0", "non0"):
        assert result[f"f1_{kind}"] == pytest.approx(82 / 105)
        assert result[f"acc2_{kind}"] == pytest.approx(0.8)


def test_acc7_rounds_halves_to_even() -> None:
    # np.round: 0.5 -> 0, 1.5 -> 2, 2.5 -> 2, -0.5 -> -0 (== 0), -1.5 -> -2 (banker's rounding, as in MMSA)
    truth = [0.5, 1.5, 2.5, -0.5, -1.5]
    assert regression_metrics(truth, [0.0, 2.0, 2.0, 0.0, -2.0])["acc7"] == 1.0
    assert regression_metrics(truth, [1.0, 1.0, 3.0, -1.0, -1.0])["acc7"] == 0.0
    # 0.49 and 0.5 both round to 0, 0.51 to 1
    assert regression_metrics([0.5, 0.5], [0.49, 0.51])["acc7"] == 0.5


def test_acc7_clips_to_three() -> None:
    # clipped: 3.6 -> 3 (unclipped it would round to 4), 4.7 -> 3, -10 -> -3; -2.6 stays and rounds to -3
    result = regression_metrics([3.0, 3.0, -3.0, -3.0], [3.6, 4.7, -10.0, -2.6])
    assert result["acc7"] == 1.0
    # MAE is computed on the unclipped values: (.6 + 1.7 + 7 + .4) / 4
    assert result["mae"] == pytest.approx(9.7 / 4)


def test_mae_and_pearson_by_hand() -> None:
    # truth [1, 2, 3] centred [-1, 0, 1]; pred [2, 2, 5] centred [-1, -1, 2]
    # cov = 1 + 0 + 2 = 3, var_t = 2, var_p = 6 -> r = 3 / sqrt(12); MAE = (1 + 0 + 2) / 3
    result = regression_metrics([1.0, 2.0, 3.0], [2.0, 2.0, 5.0])
    assert result["mae"] == pytest.approx(1.0)
    assert result["corr"] == pytest.approx(3 / math.sqrt(12))


def test_constant_inputs_give_zero_correlation() -> None:
    assert regression_metrics([1.0, 2.0, 3.0], [0.5, 0.5, 0.5])["corr"] == 0.0
    assert regression_metrics([1.0, 1.0], [0.5, 2.0])["corr"] == 0.0
    assert regression_metrics([1.0], [2.0])["corr"] == 0.0


def test_all_zero_labels_leave_non0_undefined() -> None:
    result = regression_metrics([0.0, 0.0], [0.3, -0.3])
    assert math.isnan(result["acc2_non0"]) and math.isnan(result["f1_non0"])
    assert result["acc2_has0"] == 0.5


def test_tensor_inputs_and_shapes_are_flattened() -> None:
    truth = torch.tensor([[1.0], [-1.0], [2.0]])
    pred = torch.tensor([0.5, -0.5, 1.0], requires_grad=True)
    assert regression_metrics(truth, pred) == regression_metrics([1.0, -1.0, 2.0], [0.5, -0.5, 1.0])


@pytest.mark.parametrize(
    ("truth", "pred", "message"),
    [
        ([1.0, 2.0], [1.0], "y_true has 2 values but y_pred has 1"),
        ([], [], "y_true is empty"),
        ([1.0, float("nan")], [1.0, 2.0], "y_true has 1 non-finite"),
        ([1.0, 2.0], [float("inf"), 2.0], "y_pred has 1 non-finite"),
        (["a", "b"], [1.0, 2.0], "y_true is not numeric"),
    ],
)
def test_bad_inputs(truth, pred, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        regression_metrics(truth, pred)


def test_weighted_f1_equals_scikit_learn_on_random_cases() -> None:
    from sklearn.metrics import f1_score

    rng = np.random.default_rng(0)
    for n in (1, 2, 5, 40):
        for _ in range(50):
            truth, pred = rng.random(n) < rng.random(), rng.random(n) < rng.random()
            expected = f1_score(truth, pred, average="weighted", zero_division=0)
            assert _weighted_f1(truth, pred) == pytest.approx(expected, abs=1e-12)
