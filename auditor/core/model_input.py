"""How large an image an encoder may be fed: one rule for ``[encoder.onnx] input_size`` and for the input
shape an ONNX model declares, so that neither can make one preprocessed image outgrow its memory budget.

Each image is held as a float32 array of its input shape, in the decoding workers, in their queue and in
every batch the model runs, so its size multiplies by the batch size; an unbounded side (a model declaring
20000 px) would exhaust memory before the first batch.
"""

from __future__ import annotations

MAX_INPUT_SIDE = 4096
BYTES_PER_VALUE = 4  # float32
# One RGB image at the largest side: 192 MiB.
MAX_INPUT_BYTES = MAX_INPUT_SIDE * MAX_INPUT_SIDE * 3 * BYTES_PER_VALUE


def check_input_shape(height: int, width: int, channels: int = 3) -> None:
    """Raise ValueError (one line, saying the limit) when one image of this input shape is over the budget."""
    for side in (height, width):
        if side > MAX_INPUT_SIDE:
            raise ValueError(f"an image side of {side} px is over the cap of {MAX_INPUT_SIDE} px")
    size = height * width * channels * BYTES_PER_VALUE
    if size > MAX_INPUT_BYTES:
        raise ValueError(f"one {channels}x{height}x{width} float32 input image takes {size / 2**20:,.0f} MiB, over the "
                         f"budget of {MAX_INPUT_BYTES / 2**20:,.0f} MiB per image")
