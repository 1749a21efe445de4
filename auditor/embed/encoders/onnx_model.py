"""Any ONNX image model as the embedder: teams export their production backbone and audit with it.

The model is a black box with one image input; what it expects (size, NCHW or NHWC, pixel scaling)
and which output holds the features come from ``[encoder.onnx]``, read from the model itself where
it says (a fixed input shape). onnxruntime is an optional dependency (``auditor[onnx]``).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image

from auditor.core.errors import EncoderUnavailable
from auditor.core.model_input import check_input_shape
from auditor.embed.encoders.base import cpu_thread_cap, unit_rows

if TYPE_CHECKING:
    from auditor.core.config import OnnxConfig

PREPROCESS_VERSION = 1


@dataclass(frozen=True)
class OnnxPreprocessor:
    """Resize (stretch, or shorter side + centre crop), scale, and lay out one image; numpy only."""

    size: int
    layout: str  # "NCHW" | "NHWC"
    scaling: str  # "0-255" | "0-1" | "mean_std"
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    resize: str  # "stretch" | "crop"
    draft_size: tuple[int, int] | None

    def __call__(self, image: Image.Image) -> np.ndarray:
        if self.resize == "crop":
            width, height = image.size
            scale = self.size / min(width, height)
            new_size = (max(self.size, round(width * scale)), max(self.size, round(height * scale)))
            image = image.resize(new_size, Image.Resampling.BILINEAR)
            left, top = (new_size[0] - self.size) // 2, (new_size[1] - self.size) // 2
            image = image.crop((left, top, left + self.size, top + self.size))
        else:
            image = image.resize((self.size, self.size), Image.Resampling.BILINEAR)
        array: np.ndarray = np.asarray(image, dtype=np.float32)
        if self.scaling != "0-255":
            array = array / np.float32(255.0)
        if self.scaling == "mean_std":
            array = (array - np.asarray(self.mean, np.float32)) / np.asarray(self.std, np.float32)
        if self.layout == "NCHW":
            array = array.transpose(2, 0, 1)
        return np.ascontiguousarray(array, dtype=np.float32)


def _import_onnxruntime() -> Any:
    # Imported here, not at the top: an optional dependency, needed only when this encoder is chosen.
    try:
        import onnxruntime
    except ImportError:
        raise EncoderUnavailable(
            "encoder 'onnx' needs onnxruntime, which is not installed: pip install 'auditor[onnx]'"
        ) from None
    return onnxruntime


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _infer_layout(shape: list[Any], configured: str) -> str:
    if configured != "auto":
        return configured
    if len(shape) == 4 and shape[3] == 3 and shape[1] != 3:
        return "NHWC"
    return "NCHW"


def _fixed(dim: Any) -> int | None:
    return dim if isinstance(dim, int) and dim > 0 else None


def _input_size(shape: list[Any], layout: str, configured: int | None) -> int:
    """The side images are fed at; raises ValueError when the model declares an image over the memory budget.

    A declared fixed shape binds like ``input_size`` does: a model declaring 20000 px would otherwise make
    every preprocessed image take gigabytes, before its first batch.
    """
    if len(shape) == 4:
        height, width, channels = (shape[2], shape[3], shape[1]) if layout == "NCHW" else (shape[1], shape[2], shape[3])
    else:
        height = width = channels = None
    fixed_height, fixed_width = _fixed(height), _fixed(width)
    size = configured or (fixed_height if fixed_height is not None and fixed_height == fixed_width else 224)
    check_input_shape(fixed_height or size, fixed_width or size, _fixed(channels) or 3)
    return size


class OnnxEncoder:
    """An ONNX image model run by onnxruntime (CUDA when available and allowed, else CPU)."""

    pretrained = True  # the user's own trained model; there is no 'untrained' ONNX file to detect

    def __init__(self, model_file: Path | None, params: OnnxConfig, device: str = "auto") -> None:
        if model_file is None:
            raise EncoderUnavailable("encoder 'onnx' needs encoder.model_file (or --model-file FILE.onnx)")
        model_file = Path(model_file)
        if not model_file.is_file():
            raise EncoderUnavailable(f"ONNX model file not found: {model_file}")
        ort = _import_onnxruntime()
        available = ort.get_available_providers()
        if device == "cuda" and "CUDAExecutionProvider" not in available:
            raise EncoderUnavailable("encoder.device = 'cuda' but onnxruntime has no CUDA provider here "
                                     "(pip install onnxruntime-gpu)")
        use_cuda = device != "cpu" and "CUDAExecutionProvider" in available
        providers = ["CUDAExecutionProvider", "CPUExecutionProvider"] if use_cuda else ["CPUExecutionProvider"]
        options = ort.SessionOptions()
        threads = cpu_thread_cap()
        if threads is not None:
            options.intra_op_num_threads = threads
            options.inter_op_num_threads = 1
        options.log_severity_level = 3  # errors only: onnxruntime's warnings are not the user's business
        try:
            self._session = ort.InferenceSession(str(model_file), options, providers=providers)
        except Exception as exc:  # noqa: BLE001 - onnxruntime raises its own types for corrupt files
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise EncoderUnavailable(f"cannot load ONNX model {model_file}: {first}") from None
        self.device = "cuda" if use_cuda else "cpu"
        inputs = self._session.get_inputs()
        if len(inputs) != 1:
            raise EncoderUnavailable(f"{model_file}: expected one image input, the model has {len(inputs)}")
        self._input = inputs[0].name
        self._input_fp16 = inputs[0].type == "tensor(float16)"
        shape = list(inputs[0].shape)
        # torch.onnx.export without dynamic_axes fixes the batch at the example's size (often 1).
        self._fixed_batch = shape[0] if shape and isinstance(shape[0], int) and shape[0] > 0 else None
        outputs = [o.name for o in self._session.get_outputs()]
        if params.output is not None and params.output not in outputs:
            raise EncoderUnavailable(f"{model_file}: no output named {params.output!r}; outputs: {', '.join(outputs)}")
        self._output = params.output or outputs[0]
        self.layout = _infer_layout(shape, params.layout)
        try:
            self.size = _input_size(shape, self.layout, params.input_size)
        except ValueError as exc:
            raise EncoderUnavailable(f"{model_file}: input {self._input!r} declares shape {shape}: {exc}") from None
        self._preprocessor = OnnxPreprocessor(
            self.size, self.layout, params.scaling, tuple(params.mean), tuple(params.std),  # type: ignore[arg-type]
            params.resize, (self.size, self.size),
        )
        self._model_file = model_file
        probe = self._run(np.zeros((1, *self._preprocessor(Image.new("RGB", (8, 8))).shape), np.float32))
        self.dim = int(probe.shape[1])
        self.model_sha256 = _file_sha256(model_file)
        self.identity = (
            f"onnx:{model_file.name}:{self.model_sha256[:16]}:{self._output}:{self.layout}:{self.size}:"
            f"{self._scaling_identity(params)}:{params.resize}:pp{PREPROCESS_VERSION}"
        )

    @staticmethod
    def _scaling_identity(params: OnnxConfig) -> str:
        if params.scaling != "mean_std":
            return params.scaling
        return "mean_std=" + ",".join(f"{v:g}" for v in (*params.mean, *params.std))

    def _run(self, batch: np.ndarray) -> np.ndarray:
        step = self._fixed_batch
        if step is not None and len(batch) != step:
            # A fixed batch size: feed it slices of exactly that many, the last one padded with blank inputs.
            parts = []
            for start in range(0, len(batch), step):
                part = batch[start : start + step]
                count = len(part)
                if count < step:
                    part = np.concatenate([part, np.zeros((step - count, *part.shape[1:]), part.dtype)])
                parts.append(self._run(part)[:count])
            return np.concatenate(parts)
        feed = batch.astype(np.float16) if self._input_fp16 else batch
        try:
            output = np.asarray(self._session.run([self._output], {self._input: feed})[0])
        except Exception as exc:  # noqa: BLE001 - shape/type mismatches surface here
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise EncoderUnavailable(
                f"{self._model_file} rejected a {self.layout} batch of shape {tuple(batch.shape)}: {first} "
                "(set [encoder.onnx] layout / input_size)"
            ) from None
        # One vector per image: (N, D), or a pooled map such as (N, D, 1, 1) or (N, 1, 1, D); never a scalar,
        # a spatial map, or one fixed-size result whatever the batch.
        if output.ndim < 2 or output.shape[0] != len(batch) or sum(d != 1 for d in output.shape[1:]) > 1:
            raise EncoderUnavailable(
                f"output {self._output!r} of {self._model_file} has shape {output.shape} for a batch of {len(batch)}: "
                "not one vector per image; choose a pooled feature output with [encoder.onnx] output"
            )
        return output.reshape(len(output), -1)

    def preprocessor(self) -> OnnxPreprocessor:
        return self._preprocessor

    def embed(self, batch: np.ndarray) -> np.ndarray:
        output = self._run(batch)
        source = f"output {self._output!r} of {self._model_file}"
        if output.shape[1] != self.dim:
            raise EncoderUnavailable(f"{source}: {output.shape[1]} values per image in a batch of {len(batch)}, "
                                     f"{self.dim} in a batch of 1: not one vector per image")
        return unit_rows(output, source)
