"""The one rule for how large an image an encoder may be fed, as config and ONNX models meet it."""

from __future__ import annotations

import pytest

from auditor.core.config import load_config
from auditor.core.errors import ConfigError
from auditor.core.model_input import MAX_INPUT_BYTES, MAX_INPUT_SIDE, check_input_shape


def test_sides_up_to_the_cap_fit_the_budget() -> None:
    check_input_shape(8, 8)
    check_input_shape(MAX_INPUT_SIDE, MAX_INPUT_SIDE)
    assert MAX_INPUT_BYTES == 4096 * 4096 * 3 * 4


@pytest.mark.parametrize(("height", "width", "channels", "reason"), [
    (4608, 4608, 3, "4608 px is over the cap of 4096"),
    (224, 20000, 3, "20000 px is over the cap"),
    (4096, 4096, 6, "384 MiB, over the budget of 192 MiB per image"),
])
def test_a_side_over_the_cap_or_an_input_over_the_budget_is_refused(
    height: int, width: int, channels: int, reason: str
) -> None:
    with pytest.raises(ValueError, match=reason):
        check_input_shape(height, width, channels)


def test_config_input_size_goes_through_the_same_rule() -> None:
    assert load_config(overrides={"encoder": {"onnx": {"input_size": 4096}}}).encoder.onnx.input_size == 4096
    with pytest.raises(ConfigError, match=r"encoder\.onnx\.input_size: .*4608 px is over the cap of 4096"):
        load_config(overrides={"encoder": {"onnx": {"input_size": 4608}}})
