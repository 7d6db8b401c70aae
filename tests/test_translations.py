"""Every translation has en.json's keys and placeholders, and no empty words."""

from __future__ import annotations

from collections.abc import Iterator
import json
from pathlib import Path
import re
from typing import Any

import pytest

from custom_components.misskey.const import TRANSLATION_LANGUAGES

TRANSLATIONS = Path(__file__).resolve().parents[1] / (
    "custom_components/misskey/translations"
)
ENGLISH = TRANSLATIONS / "en.json"
PLACEHOLDER = re.compile(r"\{(\w+)\}")


def strings(node: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[str, str]]:
    """Yield (key path, string) for every string in a translation file."""
    if isinstance(node, dict):
        for key, value in node.items():
            yield from strings(value, (*path, key))
    else:
        assert isinstance(node, str), f"{'.'.join(path)} is not a string: {node!r}"
        yield ".".join(path), node


def load(path: Path) -> dict[str, str]:
    """Return a translation file as {key path: string}."""
    return dict(strings(json.loads(path.read_text(encoding="utf-8"))))


def placeholders(text: str) -> set[str]:
    """Return the names of the {placeholders} in a string."""
    return set(PLACEHOLDER.findall(text))


OTHER_LANGUAGES = sorted(
    path for path in TRANSLATIONS.glob("*.json") if path.name != ENGLISH.name
)


def test_english_has_no_empty_strings() -> None:
    """Every string in en.json has words."""
    assert [key for key, text in load(ENGLISH).items() if not text.strip()] == []


def test_there_are_other_languages() -> None:
    """The tests below have something to check."""
    assert OTHER_LANGUAGES


@pytest.mark.parametrize("path", OTHER_LANGUAGES, ids=lambda path: path.stem)
def test_translation_matches_english(path: Path) -> None:
    """Same key paths as en.json, the same placeholders in each string, no empty one."""
    english = load(ENGLISH)
    translated = load(path)

    assert {
        "missing": sorted(english.keys() - translated.keys()),
        "extra": sorted(translated.keys() - english.keys()),
    } == {"missing": [], "extra": []}
    assert {
        key: (placeholders(english[key]), placeholders(text))
        for key, text in translated.items()
        if placeholders(text) != placeholders(english[key])
    } == {}
    assert [key for key, text in translated.items() if not text.strip()] == []


def test_translation_languages_are_the_files() -> None:
    """The pages served outside the frontend know every translation there is."""
    assert sorted(TRANSLATION_LANGUAGES) == sorted(
        path.stem for path in TRANSLATIONS.glob("*.json")
    )
