"""Encoder selection: one module per encoder, chosen here from the config."""

from __future__ import annotations

from typing import TYPE_CHECKING

from auditor.core.errors import ConfigError, EncoderUnavailable
from auditor.embed.encoders.base import Encoder, EncoderInfo
from auditor.embed.encoders.builtin import BuiltinEncoder
from auditor.embed.encoders.clip import unavailable_without_import
from auditor.embed.encoders.onnx_model import OnnxEncoder
from auditor.embed.encoders.precomputed import PrecomputedEmbeddings

if TYPE_CHECKING:  # loader workers unpickle preprocessors from this package: keep pydantic/pandas out
    from auditor.core.config import EncoderConfig

__all__ = ["Encoder", "EncoderInfo", "build_encoder"]


def _clip(config: EncoderConfig) -> Encoder:
    # Imported on use: CLIP needs torch and open_clip, which a builtin or precomputed scan never loads.
    from auditor.embed.encoders.clip import ClipEncoder, resolve_weights

    weights = resolve_weights(
        config.model, config.pretrained, config.weights_file, config.allow_download, config.download_timeout_s
    )
    return ClipEncoder(weights, model=config.model, device=config.device, precision=config.precision)


def build_encoder(config: EncoderConfig) -> tuple[Encoder | PrecomputedEmbeddings, EncoderInfo]:
    """Build the configured encoder; ``auto`` falls back to ``builtin`` and says why."""
    requested = config.name
    if requested == "precomputed":
        if config.precomputed_file is None:
            raise ConfigError("encoder 'precomputed' needs encoder.precomputed_file (or --embeddings FILE)")
        pre = PrecomputedEmbeddings(config.precomputed_file)
        return pre, EncoderInfo(requested, "precomputed", pre.identity, pre.dim, pretrained=False)
    if requested == "onnx":
        onnx = OnnxEncoder(config.model_file, config.onnx, config.device)
        return onnx, EncoderInfo(requested, "onnx", onnx.identity, onnx.dim, pretrained=True)
    if requested == "builtin":
        _refuse_cuda(config, "the builtin encoder runs on the CPU only")
        builtin = BuiltinEncoder()
        return builtin, EncoderInfo(requested, "builtin", builtin.identity, builtin.dim, pretrained=False)
    if requested == "clip":
        clip = _clip(config)
        return clip, EncoderInfo(requested, "clip", clip.identity, clip.dim, pretrained=clip.pretrained)
    reason = unavailable_without_import(
        config.model, config.pretrained, config.weights_file, config.allow_download, config.download_timeout_s
    )
    if reason is None:
        try:
            clip = _clip(config)
        except EncoderUnavailable as exc:
            reason = str(exc).splitlines()[0]
        else:
            return clip, EncoderInfo(requested, "clip", clip.identity, clip.dim, pretrained=clip.pretrained)
    _refuse_cuda(config, f"auto fell back to the builtin encoder, which runs on the CPU only: {reason}")
    builtin = BuiltinEncoder()
    return builtin, EncoderInfo(requested, "builtin", builtin.identity, builtin.dim, False, fallback_reason=reason)


def _refuse_cuda(config: EncoderConfig, why: str) -> None:
    """An explicit ``device = "cuda"`` that nothing will use is a mistake to report, not to ignore."""
    if config.device == "cuda":
        raise EncoderUnavailable(f"encoder.device = 'cuda' was asked for, but {why}")
