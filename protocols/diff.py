"""Version-to-version differences, from two plain snapshots (no Django here).

A snapshot is the version's own fields plus its citations, rules, steps and test patients, each as an
ordered mapping of label -> display text. Rows are paired by a key: citations by reference, steps by
name, test patients by label, rules by their place in the list, so a renamed step shows as one removed
and one added.
"""

from __future__ import annotations

from dataclasses import dataclass, field

Fields = dict[str, str]


@dataclass(frozen=True, slots=True)
class Snapshot:
    version: Fields
    citations: list[tuple[str, Fields]] = field(default_factory=list)
    rules: list[tuple[str, Fields]] = field(default_factory=list)
    steps: list[tuple[str, Fields]] = field(default_factory=list)
    test_patients: list[tuple[str, Fields]] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class FieldChange:
    label: str
    old: str
    new: str


@dataclass(frozen=True, slots=True)
class RowDiff:
    key: str
    state: str  # "changed", "added", "removed"
    changes: tuple[FieldChange, ...]


@dataclass(frozen=True, slots=True)
class SectionDiff:
    title: str
    rows: tuple[RowDiff, ...]


def _field_changes(old: Fields, new: Fields) -> tuple[FieldChange, ...]:
    labels = list(dict.fromkeys([*old, *new]))
    return tuple(
        FieldChange(label=label, old=old.get(label, ""), new=new.get(label, ""))
        for label in labels
        if old.get(label, "") != new.get(label, "")
    )


def _unique_keys(rows: list[tuple[str, Fields]]) -> list[tuple[str, Fields]]:
    """Two rows with one key (two steps with one name) stay apart: "name", "name (2)"."""
    seen: dict[str, int] = {}
    keyed = []
    for key, values in rows:
        seen[key] = seen.get(key, 0) + 1
        keyed.append((key if seen[key] == 1 else f"{key} ({seen[key]})", values))
    return keyed


def _rows_diff(old_rows: list[tuple[str, Fields]], new_rows: list[tuple[str, Fields]]) -> tuple[RowDiff, ...]:
    old = dict(_unique_keys(old_rows))
    new = dict(_unique_keys(new_rows))
    diffs = []
    for key in dict.fromkeys([*new, *old]):
        if key not in old:
            diffs.append(RowDiff(key, "added", _field_changes({}, new[key])))
        elif key not in new:
            diffs.append(RowDiff(key, "removed", _field_changes(old[key], {})))
        elif changes := _field_changes(old[key], new[key]):
            diffs.append(RowDiff(key, "changed", changes))
    return tuple(diffs)


def snapshot_diff(old: Snapshot, new: Snapshot) -> list[SectionDiff]:
    """Only what differs, section by section (empty list: the two versions say the same)."""
    sections = []
    version_changes = _field_changes(old.version, new.version)
    if version_changes:
        sections.append(SectionDiff("Version", (RowDiff("Version", "changed", version_changes),)))
    for title, old_rows, new_rows in (
        ("Citations", old.citations, new.citations),
        ("Indication rules", old.rules, new.rules),
        ("Dosing steps", old.steps, new.steps),
        ("Test patients", old.test_patients, new.test_patients),
    ):
        rows = _rows_diff(old_rows, new_rows)
        if rows:
            sections.append(SectionDiff(title, rows))
    return sections
