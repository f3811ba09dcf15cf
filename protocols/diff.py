"""Version-to-version differences, from two plain snapshots (no Django here).

A snapshot is the version's own fields plus its citations, rules, steps and test patients, each as an
ordered mapping of label -> display text. Rows are paired by a key: citations by reference, steps by
name, rules by their place in the list, so a renamed step shows as one removed and one added.

Test patients are paired by who they are, not only by label: a draft's test patients are copies (new rows),
so the patient (its inputs, in words) is the identity, and the label the fallback for a patient whose inputs
were edited. A renamed test patient, or one with re-worked expectations, shows as changed with the fields
that differ (the label among them); one whose label and inputs both changed shows as removed and added.
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


# The test-patient field that says who the patient is (the inputs in words), and the label a renamed row's
# old and new keys are shown under.
PATIENT_FIELD = "patient"
LABEL_FIELD = "label"


def _pairs(old: dict[str, Fields], new: dict[str, Fields], identity: str | None) -> dict[str, str]:
    """new key -> old key for each pair of rows that are the same row. By key alone, or, with an `identity`
    field: same key and identity first, then the same identity (a renamed row), then the same key (a row whose
    identity was edited); each row is paired at most once, in list order."""
    if identity is None:
        return {key: key for key in new if key in old}
    pairs: dict[str, str] = {}
    for same in (
        lambda o, n: o == n and old[o].get(identity) == new[n].get(identity),
        lambda o, n: old[o].get(identity) == new[n].get(identity),
        lambda o, n: o == n,
    ):
        taken = set(pairs.values())
        for new_key in new:
            if new_key in pairs:
                continue
            old_key = next((o for o in old if o not in taken and same(o, new_key)), None)
            if old_key is not None:
                pairs[new_key] = old_key
                taken.add(old_key)
    return pairs


def _rows_diff(
    old_rows: list[tuple[str, Fields]], new_rows: list[tuple[str, Fields]], *, identity: str | None = None
) -> tuple[RowDiff, ...]:
    old = dict(_unique_keys(old_rows))
    new = dict(_unique_keys(new_rows))
    pairs = _pairs(old, new, identity)
    diffs = []
    for key in new:
        if key not in pairs:
            diffs.append(RowDiff(key, "added", _field_changes({}, new[key])))
            continue
        old_key = pairs[key]
        changes = _field_changes(old[old_key], new[key])
        if old_key != key:
            changes = (FieldChange(LABEL_FIELD, old_key, key), *changes)
        if changes:
            diffs.append(RowDiff(key, "changed", changes))
    paired_old = set(pairs.values())
    diffs += [
        RowDiff(key, "removed", _field_changes(values, {})) for key, values in old.items() if key not in paired_old
    ]
    return tuple(diffs)


def snapshot_diff(old: Snapshot, new: Snapshot) -> list[SectionDiff]:
    """Only what differs, section by section (empty list: the two versions say the same)."""
    sections = []
    version_changes = _field_changes(old.version, new.version)
    if version_changes:
        sections.append(SectionDiff("Version", (RowDiff("Version", "changed", version_changes),)))
    for title, old_rows, new_rows, identity in (
        ("Citations", old.citations, new.citations, None),
        ("Indication rules", old.rules, new.rules, None),
        ("Dosing steps", old.steps, new.steps, None),
        ("Test patients", old.test_patients, new.test_patients, PATIENT_FIELD),
    ):
        rows = _rows_diff(old_rows, new_rows, identity=identity)
        if rows:
            sections.append(SectionDiff(title, rows))
    return sections
