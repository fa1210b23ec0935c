"""Values read from JSON are checked against a dataclass's annotations, whatever fields it has."""

from __future__ import annotations

import typing
from dataclasses import dataclass, field
from typing import Any

import pytest

from dualsearch.index.manifest import Manifest
from dualsearch.records import fits, type_problem


@dataclass(frozen=True)
class Settings:
    name: str
    count: int
    ratio: float = 0.5
    tags: list[str] = field(default_factory=list)
    extra: dict[str, dict[str, Any]] = field(default_factory=dict)
    note: str | None = None


def test_fitting_values_pass():
    assert (
        type_problem(Settings, {"name": "a", "count": 1, "ratio": 1, "tags": ["x"], "extra": {"f": {"b": 2}}}) is None
    )
    assert type_problem(Settings, {"name": "a", "count": 1, "note": None}) is None


@pytest.mark.parametrize(
    ("data", "field_name"),
    [
        ({"name": 3}, "name"),
        ({"count": "7"}, "count"),
        ({"count": True}, "count"),
        ({"ratio": "abc"}, "ratio"),
        ({"tags": ["x", 1]}, "tags"),
        ({"extra": {"f": 3}}, "extra"),
        ({"note": 5}, "note"),
    ],
)
def test_each_mismatch_names_its_field(data, field_name):
    assert type_problem(Settings, {"name": "a", "count": 1} | data).startswith(f"field {field_name!r} must be")


def test_every_manifest_field_has_an_annotation_the_check_understands():
    """A field added to Manifest later is checked with no change here, as long as this holds for it."""
    for name, annotation in typing.get_type_hints(Manifest).items():
        assert not fits(object(), annotation), f"Manifest.{name}: {annotation} would accept anything"
