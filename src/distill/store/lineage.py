"""A dataset's lineage: the datasets it was made from, up to the generated one.

Every manifest names its parents (`ParentRef`: path, dataset id and the sha256 of the
parent's manifest as it was when the child was made). A manifest lists its shards with
their sha256, so the hash of a manifest covers every byte of its rows, and a child's
`manifest_sha256` covers its parent's rows in turn: the chain is content-addressed, and
`distill verify` checks it link by link.

A curated dataset's rejected rows are a dataset of their own, named in its params
(`rejected_dir`, relative to the kept dataset); they are part of its lineage too. Since
they were moved out of the kept dataset (`curated/` and `curated-rejected/` side by side,
so a recursive glob or `datasets.load_dataset` of the kept folder reads only kept rows),
`default_rejected_dir` is the one place that says where they go. Datasets written before
(`curated/rejected/`, recorded as "rejected") read as they always did.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from distill.schemas import Manifest, ParentRef
from distill.store.files import DatasetError, sha256_file
from distill.store.shards import MANIFEST_NAME, load_manifest


@dataclass(frozen=True)
class ChainLink:
    """One dataset of a lineage, with the parent reference that led to it (None: the start)."""

    path: Path
    manifest: Manifest
    via: ParentRef | None = None
    depth: int = 0


@dataclass
class Lineage:
    """The datasets reachable from one, child first, and the parents that could not be found."""

    links: list[ChainLink] = field(default_factory=list)
    missing: list[tuple[Path, ParentRef]] = field(default_factory=list)  # (child, its parent)


def parent_path(child: Path, parent: ParentRef) -> Path | None:
    """Where `parent` is now. First where the child recorded it relative to itself, then
    the same folder name beside the child (a tree of datasets moved or copied as a whole
    keeps its links inside the copy), then its recorded absolute path; each must hold the
    recorded dataset id. None when none does."""
    child = Path(child)
    candidates = []
    if parent.relative_path:
        candidates.append(child / parent.relative_path)
    candidates += [child.resolve().parent / Path(parent.path).name, Path(parent.path)]
    for candidate in map(Path, map(os.path.normpath, candidates)):
        manifest = candidate / MANIFEST_NAME
        if manifest.is_file() and load_manifest(candidate).dataset_id == parent.dataset_id:
            return candidate
    return None


REJECTED_SUFFIX = "-rejected"
LEGACY_REJECTED_SUBDIR = "rejected"  # where curate wrote the rejected rows before


def default_rejected_dir(kept_dir: Path) -> Path:
    """Where curate writes the rejected rows of `kept_dir` unless told: its sibling
    `<name>-rejected` (`curated/` -> `curated-rejected/`)."""
    kept = Path(kept_dir)
    if kept.name in ("", ".", ".."):  # "." has no name of its own to suffix
        kept = kept.resolve()
    return kept.parent / f"{kept.name}{REJECTED_SUFFIX}"


def relative_link(from_dir: Path, to_dir: Path) -> str:
    """`to_dir` as a path relative to `from_dir`, as a manifest records its neighbours: a
    pair of datasets moved or copied together keeps its links."""
    return os.path.relpath(Path(to_dir).resolve(), Path(from_dir).resolve())


def points_back(rejected_dir: Path, kept_dir: Path) -> bool:
    """Whether `rejected_dir` holds the rejected rows of `kept_dir` (its `kept_dir` param
    leads back there)."""
    if not (rejected_dir / MANIFEST_NAME).is_file():
        return False
    manifest = load_manifest(rejected_dir)
    back = manifest.params.get("kept_dir")
    if manifest.kind != "rejected" or not back:
        return False
    return (rejected_dir / back).resolve() == Path(kept_dir).resolve()


def rejected_path(dataset_dir: Path, manifest: Manifest) -> Path | None:
    """The rejected-rows dataset of a curated dataset, if it has one on disk: where its
    manifest says, or else its default sibling (an old `DIR/rejected/` moved out by
    `migrate_rejected_layout`, which leaves the kept manifest's bytes, and so its
    children's hashes of it, as they were). Either must point back to `dataset_dir`: a
    copy of the kept rows (pack keeps the params) has no rejected rows of its own."""
    name = manifest.params.get("rejected_dir")
    if manifest.kind != "curated" or not name:
        return None
    recorded = Path(os.path.normpath(Path(dataset_dir) / name))
    for candidate in (recorded, default_rejected_dir(dataset_dir)):
        if points_back(candidate, dataset_dir):
            return candidate
    return None


def lineage(dataset_dir: Path) -> Lineage:
    """`dataset_dir` and every dataset above it (breadth first, each once)."""
    start = Path(dataset_dir)
    found = Lineage()
    queue = [ChainLink(start, load_manifest(start))]
    seen: set[str] = set()
    while queue:
        link = queue.pop(0)
        key = str(link.path.resolve())
        if key in seen:
            continue
        seen.add(key)
        found.links.append(link)
        for parent in link.manifest.parents:
            path = parent_path(link.path, parent)
            if path is None:
                found.missing.append((link.path, parent))
            else:
                queue.append(ChainLink(path, load_manifest(path), parent, link.depth + 1))
    return found


def manifest_sha256(dataset_dir: Path) -> str:
    path = Path(dataset_dir) / MANIFEST_NAME
    if not path.is_file():
        raise DatasetError(f"{dataset_dir}: no {MANIFEST_NAME}")
    return sha256_file(path)
