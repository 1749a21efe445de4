"""OpenCLIP image encoder with offline-first weight resolution.

Weights are looked up in the Hugging Face hub cache (``$HF_HOME/hub``, ``HF_HUB_CACHE``) or taken from
a local file. A download is attempted only when allowed and after a quick reachability probe, so a
machine without network fails in seconds with instructions instead of minutes of retries.

torch, open_clip and huggingface_hub are imported where used: loader workers unpickle
``ClipPreprocessor`` from this module and must not pay seconds of start-up for them.
"""

from __future__ import annotations

import hashlib
import logging
import os
import socket
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import numpy as np
from PIL import Image

from auditor.core.errors import EncoderUnavailable
from auditor.embed.encoders.base import cpu_thread_cap, unit_rows

PREPROCESS_VERSION = 1
_HUB_FILENAMES = ("open_clip_model.safetensors", "open_clip_pytorch_model.bin")
# Weight families trained with QuickGELU: loading them into a GELU model "works" and embeds badly.
_QUICKGELU_HINTS = ("openai", "laion400m", "yfcc15m", "cc12m")

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ClipPreprocessor:
    """open_clip's 'shortest' resize + centre crop + normalise, in numpy so workers need no torch."""

    size: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    draft_size: tuple[int, int] | None

    def __call__(self, image: Image.Image) -> np.ndarray:
        width, height = image.size
        scale = self.size / min(width, height)
        new_size = (max(self.size, round(width * scale)), max(self.size, round(height * scale)))
        image = image.resize(new_size, Image.Resampling.BICUBIC)
        left = (new_size[0] - self.size) // 2
        top = (new_size[1] - self.size) // 2
        image = image.crop((left, top, left + self.size, top + self.size))
        array: np.ndarray = np.asarray(image, dtype=np.float32) / 255.0
        array = (array - np.asarray(self.mean, dtype=np.float32)) / np.asarray(self.std, dtype=np.float32)
        return np.ascontiguousarray(array.transpose(2, 0, 1))


@dataclass(frozen=True)
class ResolvedWeights:
    """Where the weights are and what to call them in the encoder identity."""

    model_name: str
    pretrained: str | None  # a file path for open_clip, or None for an untrained model
    tag: str


def _file_fingerprint(path: Path) -> str:
    """Cheap content identity for a large checkpoint: size plus hashes of its first and last MiB."""
    digest = hashlib.sha256()
    size = path.stat().st_size
    with open(path, "rb") as handle:
        digest.update(handle.read(1 << 20))
        handle.seek(max(0, size - (1 << 20)))
        digest.update(handle.read(1 << 20))
    return f"{size}-{digest.hexdigest()[:16]}"


def _hub_cache() -> Path:
    """Where huggingface_hub keeps downloads (its own rule, read without importing it)."""
    hub = os.environ.get("HF_HUB_CACHE") or os.path.join(
        os.environ.get("HF_HOME", os.path.expanduser("~/.cache/huggingface")), "hub"
    )
    return Path(hub)


def _how_to_supply(model: str, tag: str, repo: str | None) -> str:
    hub = _hub_cache()
    lines = [
        f"OpenCLIP weights for {model} / {tag} are not available on this machine.",
        "Supply them in one of these ways:",
        f"  - on a machine with network access run once: audit scan DATASET (fills {hub}), then copy that cache here",
    ]
    if repo:
        lines.append(f"  - download {repo} ({' or '.join(_HUB_FILENAMES)}) into the hub cache above")
    lines += [
        "  - point at a local checkpoint: [encoder] weights_file = \"/path/open_clip_model.safetensors\"",
        "  - or use the weights-free fallback: --encoder builtin (lower quality)",
    ]
    return "\n".join(lines)


def _hub_reachable(timeout: float) -> bool:
    # huggingface_hub reads the same variable; importing it just for this costs a second.
    host = urlparse(os.environ.get("HF_ENDPOINT", "https://huggingface.co")).hostname
    if host is None:
        return False
    try:
        with socket.create_connection((host, 443), timeout=timeout):
            return True
    except OSError:
        return False


def unavailable_without_import(
    model: str, tag: str, weights_file: Path | None, allow_download: bool, timeout: float
) -> str | None:
    """Why no OpenCLIP checkpoint can be had, decided from the file system alone; None when one might be.

    Importing open_clip (and torch with it) takes seconds, so ``--encoder auto`` asks this first: with
    no checkpoint of any model in the hub cache, no weights file and no way to download, no tag can
    resolve, and the fallback is certain.
    """
    if weights_file is not None:
        return None
    hub = _hub_cache()
    if any(any(hub.glob(f"models--*/snapshots/*/{name}")) for name in _HUB_FILENAMES):
        return None
    offline = os.environ.get("HF_HUB_OFFLINE", "").lower() in {"1", "true", "yes", "on"}
    if allow_download and not offline and _hub_reachable(timeout):
        return None
    return (
        f"OpenCLIP weights for {model} / {tag} are not available on this machine "
        f"(no checkpoint in {hub}, no encoder.weights_file, no download possible)."
    )


def resolve_weights(
    model: str,
    tag: str,
    weights_file: Path | None,
    allow_download: bool,
    timeout: float,
) -> ResolvedWeights:
    """Find the checkpoint for ``model``/``tag`` without touching the network unless allowed and reachable."""
    import open_clip  # on use: heavy (module docstring)

    if model not in open_clip.list_models():
        raise EncoderUnavailable(f"unknown OpenCLIP model {model!r}; see open_clip.list_models()")
    if weights_file is not None:
        path = Path(weights_file).expanduser()
        if not path.is_file():
            raise EncoderUnavailable(f"encoder.weights_file not found: {path}")
        lowered = path.name.lower()
        if not model.endswith("-quickgelu") and any(hint in lowered for hint in _QUICKGELU_HINTS):
            log.warning(
                "weights file %s looks like a QuickGELU checkpoint (openai/laion400m family) but model %s "
                "uses GELU; set encoder.model = '%s-quickgelu' or embeddings will be poor",
                path, model, model,
            )
        return ResolvedWeights(model, str(path), f"file-{_file_fingerprint(path)}")

    cfg: dict[str, Any] = open_clip.get_pretrained_cfg(model, tag)
    if not cfg:
        known = ", ".join(open_clip.list_pretrained_tags_by_model(model)) or "none"
        raise EncoderUnavailable(f"OpenCLIP has no pretrained tag {tag!r} for {model}; known tags: {known}")
    # A file path bypasses open_clip's own QuickGELU handling, so apply it here.
    model_name = model
    if cfg.get("quick_gelu") and not model.endswith("-quickgelu"):
        model_name = f"{model}-quickgelu"
    repo = (cfg.get("hf_hub") or "").strip("/") or None
    if repo is None:
        raise EncoderUnavailable(
            f"tag {tag!r} of {model} is only published as a URL; download it and set encoder.weights_file"
        )
    from huggingface_hub import try_to_load_from_cache  # on use: heavy (module docstring)

    for filename in _HUB_FILENAMES:
        cached = try_to_load_from_cache(repo, filename)
        if isinstance(cached, str) and os.path.isfile(cached):
            return ResolvedWeights(model_name, cached, tag)

    offline = os.environ.get("HF_HUB_OFFLINE", "").lower() in {"1", "true", "yes", "on"}
    if not allow_download or offline or not _hub_reachable(timeout):
        raise EncoderUnavailable(_how_to_supply(model, tag, repo))
    from huggingface_hub import hf_hub_download  # on use: heavy (module docstring)

    errors = []
    for filename in _HUB_FILENAMES:
        try:
            return ResolvedWeights(model_name, hf_hub_download(repo, filename, etag_timeout=timeout), tag)
        except Exception as exc:  # noqa: BLE001 - the hub client raises many types; we report all
            errors.append(f"{filename}: {exc}")
    raise EncoderUnavailable(_how_to_supply(model, tag, repo) + "\nDownload errors:\n  " + "\n  ".join(errors))


def pick_device(device: str) -> str:
    import torch  # on use: heavy (module docstring)

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise EncoderUnavailable("encoder.device = 'cuda' but no CUDA device is available")
    return device


def _limit_cpu_threads() -> None:
    """Run the model on the cores this process may use, never more (see ``cpu_thread_cap``)."""
    import torch  # on use: heavy (module docstring)

    allowed = cpu_thread_cap()
    if allowed is not None and torch.get_num_threads() > allowed:
        torch.set_num_threads(allowed)


def _quantise_linear_layers(visual: Any) -> Any:
    """int8 dynamic quantisation of the Linear layers (the MLPs, two thirds of a ViT's compute).

    Weights are int8 per tensor, activations are quantised per batch at run time; attention
    projections stay fp32 because nn.MultiheadAttention does not expose them as Linear modules.
    """
    import torch  # on use: heavy (module docstring)

    try:
        from torch.ao.quantization import quantize_dynamic  # on use: heavy (module docstring)
    except ImportError as exc:
        raise EncoderUnavailable(f"encoder.precision = 'int8' needs torch.ao.quantization: {exc}") from None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # deprecation notices pointing to torchao; the API still works
        return quantize_dynamic(visual, {torch.nn.Linear}, dtype=torch.qint8)  # type: ignore[no-untyped-call]


class ClipEncoder:
    """An OpenCLIP image tower. ``weights=None`` builds an untrained model (tests, benchmarks only)."""

    def __init__(self, weights: ResolvedWeights | None, model: str = "ViT-B-32", device: str = "auto",
                 precision: str = "fp32", seed: int = 0) -> None:
        import open_clip  # on use: heavy (module docstring)
        import torch  # on use: heavy (module docstring)

        self.device = pick_device(device)
        self.precision = precision
        if precision == "int8" and self.device != "cpu":
            raise EncoderUnavailable("encoder.precision = 'int8' runs on the CPU only; use 'fp16' on CUDA")
        if self.device == "cpu":
            _limit_cpu_threads()
        if weights is None:
            torch.manual_seed(seed)
            model_name, pretrained, tag = model, None, f"untrained-seed{seed}"
        else:
            model_name, pretrained, tag = weights.model_name, weights.pretrained, weights.tag
        self.model_name = model_name
        self.pretrained = pretrained is not None
        open_clip_logger = logging.getLogger()
        level = open_clip_logger.level
        open_clip_logger.setLevel(logging.ERROR)  # silence "initialized randomly" for explicit test models
        try:
            clip_model = open_clip.create_model(model_name, pretrained=pretrained, device=self.device)
        except Exception as exc:  # noqa: BLE001 - corrupt or mismatched checkpoints raise many types
            raise EncoderUnavailable(f"cannot load OpenCLIP {model_name} from {pretrained}: {exc}") from None
        finally:
            open_clip_logger.setLevel(level)
        self.visual = clip_model.visual.eval()
        # The text tower stays for zero-shot class prompts (``embed_text``); about 40% of the model's size.
        self._text_model = clip_model.eval()
        self._text_model.visual = None  # held once, as self.visual (which int8 replaces by a quantised copy)
        if precision == "int8":
            self.visual = _quantise_linear_layers(self.visual)
        cfg = self.visual.preprocess_cfg
        size = cfg["size"]
        self.size = int(size[0] if isinstance(size, (tuple, list)) else size)
        self.mean = tuple(float(x) for x in cfg["mean"])
        self.std = tuple(float(x) for x in cfg["std"])
        self.dim = int(self.visual.output_dim)
        self.identity = f"clip:{model_name}:{tag}:{precision}:pp{PREPROCESS_VERSION}"

    def preprocessor(self) -> ClipPreprocessor:
        return ClipPreprocessor(self.size, self.mean, self.std, (self.size, self.size))  # type: ignore[arg-type]

    def embed(self, batch: np.ndarray) -> np.ndarray:
        import torch  # on use: heavy (module docstring)

        tensor = torch.from_numpy(np.ascontiguousarray(batch)).to(self.device)
        with torch.inference_mode():
            if self.precision in ("fp32", "int8"):
                features = self.visual(tensor)
            else:
                dtype = torch.bfloat16 if self.precision == "bf16" else torch.float16
                with torch.autocast(device_type=self.device, dtype=dtype):
                    features = self.visual(tensor)
        return unit_rows(features.float().cpu().numpy(), f"CLIP model {self.model_name}")

    def embed_text(self, texts: list[str]) -> np.ndarray:
        import open_clip  # on use: heavy (module docstring)
        import torch  # on use: heavy (module docstring)

        tokens = open_clip.get_tokenizer(self.model_name)(texts).to(self.device)
        with torch.inference_mode():
            features = self._text_model.encode_text(tokens)
        return unit_rows(features.float().cpu().numpy(), f"CLIP model {self.model_name}")
