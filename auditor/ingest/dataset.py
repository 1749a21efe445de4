"""Find images and their labels: class folders, split/class folders, or a CSV/Parquet manifest.

Paths in every output are POSIX and relative to the dataset root, so results from two machines or
two checkouts compare equal.
"""

from __future__ import annotations

import errno
import os
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

from auditor.core.errors import DatasetError

if TYPE_CHECKING:
    import pandas as pd

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff"})
SPLIT_NAMES = frozenset({"train", "val", "valid", "validation", "test", "dev"})
# Manifest cells that mean "no value" (what pandas, R and SQL exports write for a null), compared
# case-insensitively: a label `nan` is an unlabelled image, never a class named "nan".
MISSING_TEXTS = frozenset({"nan", "null", "none"})


@dataclass(frozen=True, slots=True)
class ImageRecord:
    """One discovered file; ``problem`` is set when discovery already knows it cannot be read."""

    path: str
    label: str | None
    split: str | None
    abs_path: Path
    problem: str | None = None


@dataclass
class Discovery:
    root: Path
    records: list[ImageRecord]
    layout: str
    classes: list[str]
    splits: list[str]
    # Class folders with no images, per split (None when the dataset has no splits).
    empty_classes: dict[str | None, list[str]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def _is_hidden(name: str) -> bool:
    return name.startswith(".")


def _is_image_name(name: str) -> bool:
    return os.path.splitext(name)[1].lower() in IMAGE_EXTENSIONS


def _printable(name: str, what: str = "file name") -> str | None:
    """Problem text for a name that cannot round-trip through UTF-8 or holds control characters."""
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return f"{what} is not valid UTF-8"
    if any(ord(ch) < 32 or 127 <= ord(ch) < 160 for ch in name):
        return f"{what} contains control characters (e.g. a newline or an escape sequence)"
    return None


def _folder_problem(path: Path, root: Path) -> str | None:
    """Like a bad file name: a folder name with control characters makes its images unreadable."""
    for part in path.relative_to(root).parts[:-1]:
        problem = _printable(part, "folder name")
        if problem is not None:
            return problem
    return None


def _safe_str(name: str) -> str:
    return name.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def _within(path: Path, root: Path) -> bool:
    try:
        path.relative_to(root)
    except ValueError:
        return False
    return True


def _link_problem(link: Path, root_real: Path) -> str | None:
    """Why a file symlink must not be read, or None when it ends at a file inside the dataset.

    ``Path.resolve`` raises RuntimeError on a loop before Python 3.13, which would stop discovery.
    """
    try:
        target = Path(os.path.realpath(link, strict=True))
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return "symlink loop (the link leads back to itself); not followed"
        target = Path(os.path.realpath(link))
        if _within(target, root_real):
            return "broken symlink"
        return "symlink points outside the dataset; not followed"
    if not _within(target, root_real):
        return "symlink points outside the dataset; not followed"
    return None


def _walk_images(folder: Path, root_real: Path, notes: list[str]) -> list[tuple[Path, str | None]]:
    """All image files under ``folder`` (recursively), following links that stay inside the dataset.

    Returns (path, problem) pairs; a link leaving the dataset or a bad name is a problem, not a skip,
    so the user sees it in the findings.
    """
    found: list[tuple[Path, str | None]] = []
    visited: set[Path] = set()

    def unlistable(exc: OSError) -> None:
        notes.append(f"cannot list folder {exc.filename}: {exc.strerror or exc}; its images were not scanned")

    for dirpath, dirnames, filenames in os.walk(folder, followlinks=True, onerror=unlistable):
        current = Path(dirpath)
        real = current.resolve()
        if real in visited:
            dirnames[:] = []
            notes.append(f"symlink loop skipped at {current}")
            continue
        visited.add(real)
        kept_dirs = []
        for name in sorted(dirnames):
            if _is_hidden(name):
                continue
            sub = current / name
            if sub.is_symlink() and not _within(sub.resolve(), root_real):
                notes.append(f"directory symlink leaving the dataset not followed: {sub}")
                continue
            kept_dirs.append(name)
        dirnames[:] = kept_dirs
        for name in sorted(filenames):
            if _is_hidden(name) or not _is_image_name(name):
                continue
            file_path = current / name
            problem = _printable(name)
            if problem is None and file_path.is_symlink():
                problem = _link_problem(file_path, root_real)
            found.append((file_path, problem))
    return found


def _relative_posix(path: Path, root: Path) -> str:
    return _safe_str(PurePosixPath(*path.relative_to(root).parts).as_posix())


def discover(root: Path, manifest: Path | None = None) -> Discovery:
    """Find every image under ``root`` with its label and split."""
    root = Path(root)
    if not root.exists():
        raise DatasetError(f"dataset folder not found: {root}")
    if not root.is_dir():
        raise DatasetError(f"dataset path is not a folder: {root}")
    if manifest is not None:
        discovery = _from_manifest(root, manifest)
    else:
        try:
            discovery = _from_folders(root)
        except PermissionError as exc:
            raise DatasetError(f"cannot list folder {exc.filename}: {exc.strerror}") from None
    if not discovery.records:
        raise DatasetError(
            f"no images found in {root} (looked for {', '.join(sorted(IMAGE_EXTENSIONS))} "
            "in DATASET/<class>/ or DATASET/<split>/<class>/ folders)"
        )
    return discovery


def _class_dirs(folder: Path, root_real: Path, notes: list[str]) -> list[Path]:
    dirs = []
    for entry in sorted(folder.iterdir(), key=lambda p: p.name):
        if _is_hidden(entry.name) or not entry.is_dir():
            continue
        if entry.is_symlink() and not _within(entry.resolve(), root_real):
            notes.append(f"class folder symlink leaving the dataset not followed: {entry}")
            continue
        dirs.append(entry)
    return dirs


def _loose_images(folder: Path) -> int:
    return sum(1 for p in folder.iterdir() if p.is_file() and not _is_hidden(p.name) and _is_image_name(p.name))


def _from_folders(root: Path) -> Discovery:
    root_real = root.resolve()
    notes: list[str] = []
    top = _class_dirs(root, root_real, notes)
    split_dirs = [d for d in top if d.name.lower() in SPLIT_NAMES]
    other_dirs = [d for d in top if d.name.lower() not in SPLIT_NAMES]
    if split_dirs and other_dirs:
        raise DatasetError(
            f"{root} mixes split folders ({', '.join(d.name for d in split_dirs)}) with other folders "
            f"({', '.join(d.name for d in other_dirs)}); put every class folder inside a split, "
            "or use --manifest"
        )
    records: list[ImageRecord] = []
    empty: dict[str | None, list[str]] = {}
    # Split names are case-insensitive (TRAIN/ and train/ are one split, `train`): copies between two
    # spellings of a split are no leakage.
    groups: list[tuple[str | None, Path]] = (
        [(split_name(d.name), d) for d in split_dirs] if split_dirs else [(None, root)]
    )
    for split, base in groups:
        loose = _loose_images(base)
        if loose:
            where = f"split folder {base.name}" if split else "the dataset root"
            notes.append(f"{loose} image(s) directly in {where} have no class folder and were ignored")
        for class_dir in _class_dirs(base, root_real, notes):
            # A class named with control characters is no class: its images are reported as unreadable,
            # unlabelled, so the name never becomes a label printed in a table or a heading.
            named = _printable(class_dir.name, "folder name") is None
            label = _safe_str(class_dir.name) if named else None
            files = _walk_images(class_dir, root_real, notes)
            if not files and label is not None:
                empty.setdefault(split, []).append(label)
            for file_path, problem in files:
                problem = problem or _folder_problem(file_path, root)
                records.append(
                    ImageRecord(_relative_posix(file_path, root), label, split, file_path, problem)
                )
    classes = sorted({r.label for r in records if r.label is not None} | {c for cs in empty.values() for c in cs})
    splits = sorted({split_name(d.name) for d in split_dirs})
    return Discovery(
        root=root,
        records=records,
        layout="split/class" if split_dirs else "class",
        classes=classes,
        splits=splits,
        empty_classes=empty,
        notes=notes,
    )


def split_name(name: str) -> str:
    """The canonical name of a split: split names are compared case-insensitively."""
    return name.lower()


def _manifest_text(value: object) -> str | None:
    """A manifest cell as text; None for a null (Parquet null, pandas NaN/NA) or blank cell."""
    import pandas as pd  # imported on use, as in _read_manifest: discovering folders needs no pandas

    if value is None or (pd.api.types.is_scalar(value) and pd.isna(value)):
        return None
    return str(value).strip() or None


def _manifest_value(value: object) -> str | None:
    """A label or split cell; None for a null, a blank cell or a written-out null (``MISSING_TEXTS``)."""
    text = _manifest_text(value)
    return None if text is None or text.lower() in MISSING_TEXTS else text


def _read_manifest(manifest: Path) -> pd.DataFrame:
    """The manifest's table, with at least the path and label columns; CSV/TSV cells are read as text."""
    import pandas as pd  # imported on use: discovering folders needs no pandas

    if not manifest.is_file():
        raise DatasetError(f"manifest not found: {manifest}")
    try:
        if manifest.suffix.lower() == ".parquet":
            frame = pd.read_parquet(manifest)
        elif manifest.suffix.lower() in {".csv", ".tsv"}:
            frame = pd.read_csv(manifest, sep="\t" if manifest.suffix.lower() == ".tsv" else ",", dtype=str,
                                keep_default_na=False)
        else:
            raise DatasetError(f"manifest must be .csv, .tsv or .parquet, got {manifest.name}")
    except DatasetError:
        raise
    except Exception as exc:  # noqa: BLE001 - pandas/pyarrow raise many types for malformed files
        raise DatasetError(f"cannot read manifest {manifest}: {exc}") from None
    missing = {"path", "label"} - set(frame.columns)
    if missing:
        raise DatasetError(f"manifest {manifest} lacks column(s) {', '.join(sorted(missing))}; "
                           "expected path,label[,split]")
    return frame


def _manifest_path(raw: str, root: Path, root_real: Path, where: str) -> PurePosixPath:
    """A manifest row's path, POSIX and relative to the dataset; refuses one that is empty or leaves the
    dataset (absolute, '..', or a link resolving outside). ``where`` names the row in the refusal."""
    if not raw:
        raise DatasetError(f"{where}: empty path")
    candidate = PurePosixPath(raw.replace("\\", "/"))
    if candidate.is_absolute() or ".." in candidate.parts or Path(raw).is_absolute():
        raise DatasetError(
            f"{where}: path {raw!r} escapes the dataset "
            "(absolute paths and '..' are not allowed; paths are relative to DATASET)"
        )
    abs_path = root / Path(*candidate.parts)
    if abs_path.exists() and not _within(abs_path.resolve(), root_real):
        raise DatasetError(f"{where}: path {raw!r} resolves outside the dataset")
    return candidate


def _name_problem(candidate: PurePosixPath, label: str | None, split: str | None) -> str | None:
    """Why a row's path, label or split cannot be shown or used as a name (control characters, bad UTF-8)."""
    problem = next((p for p in (_printable(part, "name") for part in candidate.parts) if p), None)
    for text, what in ((label, "label"), (split, "split")):
        if text is not None and problem is None:
            problem = _printable(text, what)
    return problem


def _file_problem(abs_path: Path, root_real: Path) -> str | None:
    """Why the file a manifest row names cannot be read: a bad link, a folder, a special file, or none at all."""
    if abs_path.is_symlink():
        problem = _link_problem(abs_path, root_real)
        if problem is not None:
            return problem
    if abs_path.is_file():
        return None
    if abs_path.is_dir():
        return "path listed in the manifest is a folder, not a file"
    if abs_path.exists():
        return "not a regular file (a pipe, socket or device)"
    return "file listed in the manifest does not exist"


def _manifest_record(row: Any, has_split: bool, root: Path, root_real: Path, where: str) -> ImageRecord:
    """One manifest row (a pandas itertuples row) as a record; a bad name leaves it unlabelled, with no split."""
    path = _manifest_path(_manifest_text(row.path) or "", root, root_real, where)
    # A null, empty or `nan`/`NULL`/`None` label means "unlabelled", such a split "no split" (never a class "nan").
    label = _manifest_value(row.label)
    split = _manifest_value(row.split) if has_split else None
    split = split_name(split) if split is not None else None
    abs_path = root / Path(*path.parts)
    problem = _name_problem(path, label, split)
    if problem is not None:
        # Like a folder name: never a class or split printed raw.
        return ImageRecord(path.as_posix(), None, None, abs_path, problem)
    return ImageRecord(path.as_posix(), label, split, abs_path, _file_problem(abs_path, root_real))


def _from_manifest(root: Path, manifest: Path) -> Discovery:
    manifest = Path(manifest)
    frame = _read_manifest(manifest)
    root_real = root.resolve()
    records: list[ImageRecord] = []
    seen: set[str] = set()
    has_split = "split" in frame.columns
    for index, row in enumerate(frame.itertuples(index=False), start=2):
        where = f"manifest {manifest} row {index}"
        record = _manifest_record(row, has_split, root, root_real, where)
        if record.path in seen:
            raise DatasetError(f"{where}: path {_manifest_text(row.path)!r} is listed twice")
        seen.add(record.path)
        records.append(record)
    return Discovery(
        root=root,
        records=records,
        layout="manifest",
        classes=sorted({r.label for r in records if r.label is not None}),
        splits=sorted({r.split for r in records if r.split is not None}),
    )
