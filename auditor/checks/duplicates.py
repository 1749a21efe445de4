"""Exact, perceptual and semantic duplicates, grouped; groups that span splits are train/test leakage.

Three methods propose pairs of images, and union-find joins them into groups:

- exact: the same bytes (sha256) or the same decoded pixels (a re-saved file);
- perceptual: pHash and dHash both within a Hamming distance (robust to resizing, JPEG recompression,
  small brightness changes and 2-px shifts). Hashes are grey and coarse -- simple distinct pictures
  and differently coloured flat frames can share them -- so a pair must also reach an embedding
  cosine: a high one (``perceptual_min_cosine``) when the hashes are merely close, a lower one
  (``close_hash_min_cosine``) when both are within ``close_hash_max_distance`` bits. Near-flat
  images, whose hashes carry almost no bits, are left to the other methods;
- semantic: embedding cosine at or above a threshold that depends on the encoder, among each image's
  ``top_k`` nearest neighbours. It favours precision: the built-in descriptor sees appearance only, so
  its threshold is high; CLIP separates distinct photos of one subject better. An untrained CLIP model
  (random weights) gives meaningless cosines, so the semantic method is skipped for it.

A group whose members lie in two or more splits yields a ``split_leakage`` finding (error) for every
member; otherwise every member gets ``exact_duplicate`` (all members pixel-identical) or
``near_duplicate`` (warnings). Copies under different labels are reported here with their labels;
turning them into label conflicts is the label-error check's job (``CheckContext.exact_copy_groups``).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from auditor.checks.base import Check, CheckContext, CheckResult, plain
from auditor.findings import Finding, FindingKind, Severity
from auditor.similarity import Pairs, components, cosine_pairs, hamming_pairs, hex_codes, unit_rows

_HASH_BITS = 64
METHODS = ("sha256", "pixels", "perceptual", "semantic")
_IDENTICAL: dict[tuple[str, ...], str] = {("sha256",): "identical bytes", ("pixels",): "identical pixels"}


class DuplicatesParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    # Perceptual pairs: pHash Hamming distance (of 64 bits) at most this...
    phash_max_distance: int = Field(10, ge=0, le=_HASH_BITS)
    # ...and dHash Hamming distance at most this...
    dhash_max_distance: int = Field(10, ge=0, le=_HASH_BITS)
    # ...and embedding cosine at least this, when both images are embedded: hashes are grey and coarse,
    # so simple distinct pictures (one shape on a plain background) can share them.
    perceptual_min_cosine: float = Field(0.95, ge=-1.0, le=1.0)
    # Both hashes within this distance are near-certain copies and need only ``close_hash_min_cosine``
    # (a brightened copy of a flat-coloured picture can lose much of the built-in descriptor's cosine).
    close_hash_max_distance: int = Field(4, ge=0, le=_HASH_BITS)
    close_hash_min_cosine: float = Field(0.8, ge=-1.0, le=1.0)
    # Images whose dHash has fewer than this many 1 bits (or 0 bits) are near-flat: no perceptual match.
    min_hash_bits: int = Field(4, ge=0, le=_HASH_BITS // 2)
    # Semantic pairs: embedding cosine at least this, per encoder (see the module docstring).
    semantic: bool = True
    semantic_min_cosine_builtin: float = Field(0.97, ge=-1.0, le=1.0)
    semantic_min_cosine_clip: float = Field(0.96, ge=-1.0, le=1.0)
    semantic_min_cosine_other: float = Field(0.97, ge=-1.0, le=1.0)
    # Neighbours kept per image by the perceptual and semantic searches.
    top_k: int = Field(10, ge=1, le=1000)
    # Up to this many distinct images the searches are exact; beyond it, faiss inverted-file indexes.
    exact_max_images: int = Field(20_000, ge=2)
    # Cells of the inverted-file index searched per image (more: slower, higher recall).
    ann_nprobe: int = Field(8, ge=1)


@dataclass
class _Edge:
    """What is known about one pair of distinct-content images (representatives)."""

    methods: set[str] = field(default_factory=set)
    cosine: float | None = None
    phash_distance: int | None = None
    dhash_distance: int | None = None

    @property
    def similarity(self) -> float:
        """How sure the pair is a copy: the stronger of its cosine and its hash agreement (1 - bits/64)."""
        hashes = (1.0 - max(self.phash_distance, self.dhash_distance or 0) / _HASH_BITS
                  if self.phash_distance is not None else -1.0)
        return max(self.cosine if self.cosine is not None else -1.0, hashes)


def _no_groups(ctx: CheckContext) -> pd.Series:
    """The ``duplicate_group`` column before filling: None (not Arrow-unfriendly pd.NA) for no group."""
    return pd.Series([None] * len(ctx.images), index=ctx.images.index, dtype=object)


def _pairs_within(group_sizes: pd.Series) -> int:
    return int((group_sizes * (group_sizes - 1) // 2).sum())


def semantic_threshold(params: DuplicatesParams, encoder_name: str) -> float:
    if encoder_name == "builtin":
        return params.semantic_min_cosine_builtin
    if encoder_name == "clip":
        return params.semantic_min_cosine_clip
    return params.semantic_min_cosine_other


class DuplicatesCheck(Check[DuplicatesParams]):
    name = "duplicates"
    produces = frozenset({"split_leakage", "exact_duplicate", "near_duplicate"})
    description = "exact, re-encoded, resized and near-identical copies, and copies shared between splits"
    Params = DuplicatesParams
    kinds = {
        "split_leakage": FindingKind(
            "Leakage between splits",
            "The same image in more than one split; each group is one image content.",
            layout="groups", order=4,
        ),
        "exact_duplicate": FindingKind(
            "Exact duplicates",
            "Byte-identical or pixel-identical copies within a split.",
            layout="groups", order=5,
        ),
        "near_duplicate": FindingKind(
            "Near duplicates",
            "Visually near-identical images (re-encoded, resized, slightly edited).",
            layout="groups", order=6,
        ),
    }

    def run(self, ctx: CheckContext) -> CheckResult:
        params = self.params
        rows = ctx.images[ctx.images["readable"] & ctx.images["pixel_sha256"].notna()].reset_index()
        summary: dict[str, Any] = {"pairs": dict.fromkeys(METHODS, 0)}
        if len(rows) < 2:
            summary.update(groups={"split_leakage": 0, "exact_duplicate": 0, "near_duplicate": 0},
                           images_in_groups=0, label_conflict_groups=0)
            return CheckResult([], columns={"duplicate_group": _no_groups(ctx)}, summary=summary)
        # Exact pairs join each file to the first file of its content (a star); counted as all pairs.
        exact_left: list[int] = []
        exact_right: list[int] = []
        for key in ("sha256", "pixel_sha256"):
            for members in rows.groupby(key, sort=False).indices.values():
                exact_left += [int(members[0])] * (len(members) - 1)
                exact_right += [int(m) for m in members[1:]]
        byte_pairs = _pairs_within(rows.groupby("sha256", sort=False).size())
        summary["pairs"]["sha256"] = byte_pairs
        pixel_pairs = _pairs_within(rows.groupby("pixel_sha256", sort=False).size())
        summary["pairs"]["pixels"] = pixel_pairs - byte_pairs

        # Perceptual and semantic pairs between distinct contents: one representative per pixel content.
        reps = rows.drop_duplicates("pixel_sha256")
        rep_pos = reps.index.to_numpy()
        edges, semantic_note = self._content_edges(ctx, reps, params)
        for edge in edges.values():
            for method in edge.methods:
                summary["pairs"][method] += 1
        pair_list = [Pairs(np.asarray(exact_left, np.int64), np.asarray(exact_right, np.int64),
                           np.ones(len(exact_left)))]
        if edges:
            ends = np.array(list(edges), dtype=np.int64)
            similarity = np.array([edge.similarity for edge in edges.values()])
            pair_list.append(Pairs(rep_pos[ends[:, 0]], rep_pos[ends[:, 1]], similarity))
        labels = components(len(rows), pair_list)
        findings, group_column, group_counts, conflicts = self._findings(ctx, rows, reps, labels, edges)
        summary.update(
            {
                "groups": group_counts,
                "images_in_groups": len(findings),
                "label_conflict_groups": conflicts,
                "semantic": semantic_note,
                "perceptual": {
                    "phash_max_distance": params.phash_max_distance,
                    "dhash_max_distance": params.dhash_max_distance,
                    "min_cosine": params.perceptual_min_cosine,
                    "close_hash_max_distance": params.close_hash_max_distance,
                    "close_hash_min_cosine": params.close_hash_min_cosine,
                },
            }
        )
        return CheckResult(findings, columns={"duplicate_group": group_column}, summary=summary)

    def _content_edges(
        self, ctx: CheckContext, reps: pd.DataFrame, params: DuplicatesParams
    ) -> tuple[dict[tuple[int, int], _Edge], dict[str, Any]]:
        """Perceptual and semantic pairs, keyed by (i, j) positions in ``reps`` with i < j."""
        edges: dict[tuple[int, int], _Edge] = defaultdict(_Edge)
        embedding_rows = reps["embedding_row"].to_numpy()
        embedded = embedding_rows >= 0
        unit = np.zeros((len(reps), ctx.embeddings.shape[1] if ctx.embeddings.ndim == 2 else 0), np.float32)
        if embedded.any():
            unit[embedded] = unit_rows(ctx.embeddings[embedding_rows[embedded]])

        hashed = (reps["phash"].notna() & reps["dhash"].notna()).to_numpy()
        if hashed.any():
            where = np.flatnonzero(hashed)
            dhash = hex_codes(reps["dhash"].to_numpy()[where].tolist())
            ones = np.unpackbits(dhash, axis=1).sum(axis=1)
            informative = (ones >= params.min_hash_bits) & (ones <= dhash.shape[1] * 8 - params.min_hash_bits)
            where, dhash = where[informative], dhash[informative]
            phash = hex_codes(reps["phash"].to_numpy()[where].tolist())
            found = hamming_pairs(phash, params.phash_max_distance, params.top_k, params.exact_max_images,
                                  params.ann_nprobe)
            dhash_distance = np.unpackbits(dhash[found.left] ^ dhash[found.right], axis=1).sum(axis=1)
            candidates = zip(where[found.left], where[found.right], found.value, dhash_distance, strict=True)
            for a, b, p_dist, d_dist in candidates:
                cosine = float(unit[a] @ unit[b]) if embedded[a] and embedded[b] else None
                close = max(p_dist, d_dist) <= params.close_hash_max_distance
                needed = params.close_hash_min_cosine if close else params.perceptual_min_cosine
                if d_dist > params.dhash_max_distance or (cosine is not None and cosine < needed):
                    continue
                edge = edges[(int(a), int(b))]
                edge.methods.add("perceptual")
                edge.cosine, edge.phash_distance, edge.dhash_distance = cosine, int(p_dist), int(d_dist)

        threshold = semantic_threshold(params, ctx.encoder.name)
        note: dict[str, Any] = {"encoder": ctx.encoder.name, "min_cosine": threshold}
        if not params.semantic:
            note["skipped"] = "disabled in config"
        elif not ctx.encoder.trusted:
            note["skipped"] = "the CLIP model is untrained (random weights), its cosines are meaningless"
        elif embedded.sum() >= 2:
            where = np.flatnonzero(embedded)
            found, search = cosine_pairs(unit[where], threshold, params.top_k, params.exact_max_images,
                                         params.ann_nprobe)
            note["search"] = search
            for a, b, cosine in zip(where[found.left], where[found.right], found.value, strict=True):
                edge = edges[(int(a), int(b))]
                edge.methods.add("semantic")
                edge.cosine = float(cosine)
        return dict(edges), note

    def _findings(
        self,
        ctx: CheckContext,
        rows: pd.DataFrame,
        reps: pd.DataFrame,
        labels: np.ndarray,
        edges: dict[tuple[int, int], _Edge],
    ) -> tuple[list[Finding], pd.Series, dict[str, int], int]:
        """One finding per member of every group of two or more; group ids follow file order."""
        rep_of_content = {content: n for n, content in enumerate(reps["pixel_sha256"])}
        rep_row = reps.index.to_numpy()
        # Each content's nearest other content: (similarity, other rep, edge).
        nearest: dict[int, tuple[float, int, _Edge]] = {}
        for (a, b), pair in edges.items():
            for me, other in ((a, b), (b, a)):
                if me not in nearest or pair.similarity > nearest[me][0]:
                    nearest[me] = (pair.similarity, other, pair)

        group_column = _no_groups(ctx)
        counts = {"split_leakage": 0, "exact_duplicate": 0, "near_duplicate": 0}
        conflicts = 0
        findings: list[Finding] = []
        sizes = np.bincount(labels)
        members_by_label: dict[int, list[int]] = defaultdict(list)
        for item in np.flatnonzero(sizes[labels] >= 2):
            members_by_label[int(labels[item])].append(int(item))
        for group_id, members in enumerate(sorted(members_by_label.values(), key=lambda m: m[0])):
            group = rows.loc[members]
            splits = sorted({str(s) for s in group["split"].dropna()})
            group_labels = sorted({str(s) for s in group["label"].dropna()})
            if len(splits) >= 2:
                kind, severity = "split_leakage", Severity.ERROR
            elif group["pixel_sha256"].nunique() == 1:
                kind, severity = "exact_duplicate", Severity.WARNING
            else:
                kind, severity = "near_duplicate", Severity.WARNING
            counts[kind] += 1
            conflicts += len(group_labels) >= 2
            group_methods: set[str] = set()
            partners = {}
            for position in members:
                partners[position] = self._partner(rows, position, group, rep_of_content, rep_row, nearest)
                group_methods.update(partners[position][2])
            for position in members:
                row = rows.loc[position]
                other, similarity, methods, edge = partners[position]
                group_column.at[row["index"]] = group_id
                other_path = str(rows.at[other, "path"])
                how = _IDENTICAL.get(tuple(methods), f"similarity {similarity:.3f}, {'+'.join(methods)}")
                where = f", splits {', '.join(splits)}" if kind == "split_leakage" else ""
                details: dict[str, Any] = {
                    "similarity": similarity,
                    "methods": methods,
                    "group_methods": sorted(group_methods),
                    "group_size": len(members),
                    "splits": splits,
                    "labels": group_labels,
                    "labels_differ": len(group_labels) >= 2,
                }
                if edge is not None:
                    details["cosine"] = edge.cosine
                    details["phash_distance"] = edge.phash_distance
                    details["dhash_distance"] = edge.dhash_distance
                findings.append(
                    Finding(
                        check=kind,
                        severity=severity,
                        message=f"{kind.replace('_', ' ')}: copy of {other_path} ({how}; group of "
                                f"{len(members)}{where})",
                        path=str(row["path"]),
                        label=plain(row["label"]),
                        split=plain(row["split"]),
                        score=similarity,
                        group_id=group_id,
                        other_path=other_path,
                        sha256=plain(row["sha256"]),
                        classes=tuple(group_labels),
                        details=details,
                    )
                )
        return findings, group_column, counts, conflicts

    @staticmethod
    def _partner(
        rows: pd.DataFrame,
        position: int,
        group: pd.DataFrame,
        rep_of_content: dict[str, int],
        rep_row: np.ndarray,
        nearest: dict[int, tuple[float, int, _Edge]],
    ) -> tuple[int, float, list[str], _Edge | None]:
        """The member nearest ``position``: an identical copy if any, else the nearest other content."""
        me = rows.loc[position]
        same_pixels = group[(group["pixel_sha256"] == me["pixel_sha256"]) & (group.index != position)]
        if len(same_pixels):
            same_bytes = same_pixels[same_pixels["sha256"] == me["sha256"]]
            if len(same_bytes):
                return int(same_bytes.index[0]), 1.0, ["sha256"], None
            return int(same_pixels.index[0]), 1.0, ["pixels"], None
        similarity, other, edge = nearest[rep_of_content[me["pixel_sha256"]]]
        return int(rep_row[other]), float(similarity), sorted(edge.methods), edge
