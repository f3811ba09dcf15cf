"""Load the reviewed seed data file into the database, idempotently and without overwriting edits.

Per protocol: a new institution gets version 1, published, with the file's test patients for it. A
protocol whose every version came from this loader is left alone when the file entry and its test
patients are unchanged, and gets a new published version when either changed (test patients belong to
their version, like its steps). A protocol that anyone has edited since (any version not made by the
loader, draft or published) is never touched: the report says so instead.

Every other record (reference, study, institution, protocol title) is checked against
the loader's ledger (evidence.LoadedRecord): updated from the file only while it still equals what
the loader last wrote, otherwise kept and reported by name; created when missing.
"""

from __future__ import annotations

import hashlib
import json
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from django.db import transaction
from pydantic import ValidationError

from engine.data import PatientInputs, ToxicityGrade
from engine.recommend import recommend_all
from engine.vocabulary import Toxicity
from evidence.models import LoadedRecord, Reference, Study
from protocols.models import (
    OPEN_STATUSES,
    DosingStep,
    IndicationRule,
    Institution,
    Protocol,
    ProtocolCitation,
    ProtocolTestPatient,
    ProtocolVersion,
    StepCitation,
    VersionStatus,
)
from protocols.seed_schema import PatientCheckEntry, ProtocolEntry, ReferenceEntry, SeedFile, StudyEntry
from protocols.selectors.catalog import published_protocols_load, versions_with_content
from protocols.selectors.reads import protocol_test_patients_check
from protocols.services import protocol_version_publish

SEED_PATH = Path(__file__).resolve().parent / "data" / "clinical_data.toml"


class SeedFileError(Exception):
    """The data file cannot be read or does not have the expected shape."""


@dataclass
class LoadReport:
    lines: list[str] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)
    writes: int = 0

    def say(self, line: str) -> None:
        self.lines.append(line)


def seed_file_parse(*, path: Path = SEED_PATH) -> SeedFile:
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"), parse_float=Decimal)
    except FileNotFoundError:
        raise SeedFileError(f"{path}: no such file") from None
    except tomllib.TOMLDecodeError as error:
        raise SeedFileError(f"{path}: not valid TOML: {error}") from None
    try:
        return SeedFile.model_validate(raw)
    except ValidationError as error:
        problems = [f"{'.'.join(str(p) for p in e['loc']) or 'file'}: {e['msg']}" for e in error.errors()]
        raise SeedFileError(f"{path}: " + "; ".join(problems)) from None


def protocol_fingerprint(entry: ProtocolEntry) -> str:
    canonical = json.dumps(entry.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def _sync(instance: Any, values: dict[str, Any]) -> bool:
    """Set changed fields; True when anything differed."""
    changed = False
    for name, value in values.items():
        if getattr(instance, name) != value:
            setattr(instance, name, value)
            changed = True
    return changed


def _canonical(value: Any) -> Any:
    # Numbers compare by value: the file says 40, a one-decimal column reads back 40.0.
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, int | Decimal):
        return format(Decimal(value).normalize(), "f")
    if isinstance(value, dict):
        return {str(k): _canonical(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_canonical(v) for v in value]
    raise TypeError(f"cannot fingerprint {type(value).__name__}")


def content_fingerprint(values: dict[str, Any]) -> str:
    """Hash of a record's loaded fields, the same whether read from the file or from the database."""
    canonical = json.dumps(_canonical(values), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


KEPT = "NOT overwritten - edited since it was loaded; the file's entry was not applied"
KEPT_UNRECORDED = (
    "NOT overwritten - differs from the data file and the loader has no record of writing it "
    "(edited since it was loaded); the file's entry was not applied"
)


@dataclass
class _Ledger:
    """What the loader last wrote, per (kind, natural key); see evidence.LoadedRecord."""

    rows: dict[tuple[str, str], LoadedRecord]

    @classmethod
    def read(cls) -> _Ledger:
        return cls({(r.kind, r.natural_key): r for r in LoadedRecord.objects.all()})

    def remember(self, kind: str, key: str, fingerprint: str) -> None:
        row = self.rows.get((kind, key))
        if row is None:
            self.rows[(kind, key)] = LoadedRecord.objects.create(kind=kind, natural_key=key, fingerprint=fingerprint)
        elif row.fingerprint != fingerprint:
            row.fingerprint = fingerprint
            row.save(update_fields=["fingerprint", "loaded_at"])


@dataclass
class _Tally:
    plural: str
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    kept: int = 0

    def line(self) -> str:
        line = f"{self.plural}: {self.created} created, {self.updated} updated, {self.unchanged} unchanged"
        return line + (f", {self.kept} NOT overwritten (edited since loaded)" if self.kept else "")


def _reconcile(
    *,
    kind: str,
    key: str,
    name: str,
    current: dict[str, Any] | None,
    wanted: dict[str, Any],
    write: Callable[[], None],
    ledger: _Ledger,
    tally: _Tally,
    report: LoadReport,
) -> bool:
    """Create, update or keep one record; True when `write` ran.

    `current` is the record's loaded fields as stored now (None: missing). It is updated from the
    file only when it still equals what the loader last wrote; anything else is someone's edit.
    """
    wanted_fp = content_fingerprint(wanted)
    if current is None:
        write()
        ledger.remember(kind, key, wanted_fp)
        tally.created += 1
        report.writes += 1
        return True
    current_fp = content_fingerprint(current)
    if current_fp == wanted_fp:
        ledger.remember(kind, key, wanted_fp)
        tally.unchanged += 1
        return False
    row = ledger.rows.get((kind, key))
    if row is not None and row.fingerprint == current_fp:
        write()
        ledger.remember(kind, key, wanted_fp)
        tally.updated += 1
        report.writes += 1
        return True
    tally.kept += 1
    report.refused.append(name)
    report.say(f"{name}: {KEPT if row is not None else KEPT_UNRECORDED}")
    return False


def _reference_values(entry: ReferenceEntry) -> dict[str, Any]:
    values = entry.model_dump(exclude={"key", "number"})
    values["letter_ref_number"] = entry.number
    return values


def _fields(instance: Any, names: Any) -> dict[str, Any]:
    return {name: getattr(instance, name) for name in names}


def _save(instance: Any, values: dict[str, Any]) -> None:
    _sync(instance, values)
    instance.full_clean()
    instance.save()


def _load_references(seed: SeedFile, ledger: _Ledger, report: LoadReport) -> dict[str, Reference]:
    existing = {r.key: r for r in Reference.objects.all()}
    tally = _Tally("references")
    for entry in seed.references:
        values = _reference_values(entry)
        reference = existing.get(entry.key) or Reference(key=entry.key)
        existing[entry.key] = reference
        _reconcile(
            kind=LoadedRecord.Kind.REFERENCE,
            key=entry.key,
            name=f"reference {entry.key}",
            current=_fields(reference, values) if reference.pk else None,
            wanted=values,
            write=lambda reference=reference, values=values: _save(reference, values),
            ledger=ledger,
            tally=tally,
            report=report,
        )
    report.say(tally.line())
    return existing


def _study_values(entry: StudyEntry, order: int) -> dict[str, Any]:
    values = entry.model_dump(exclude={"key", "toxicities", "references", "regimen"})
    values["n_patients"] = entry.n_patients
    values["table_order"] = order
    values["addresses_crs"] = "CRS" in entry.toxicities
    values["addresses_icans"] = "ICANS" in entry.toxicities
    values["addresses_carhlh"] = "carHLH" in entry.toxicities
    return values


NO_REGIMEN: dict[str, Any] = {
    "regimen_protocol": None,
    "regimen_dose_basis": "",
    "regimen_amount_low": None,
    "regimen_amount_high": None,
    "regimen_interval_hours": None,
    "regimen_route_iv": False,
    "regimen_route_sc": False,
}


def _regimen_values(entry: StudyEntry, protocols: dict[str, Protocol]) -> dict[str, Any]:
    regimen = entry.regimen
    if regimen is None:
        return dict(NO_REGIMEN)
    return {
        "regimen_protocol": protocols[regimen.protocol],
        "regimen_dose_basis": regimen.dose_basis.value,
        "regimen_amount_low": regimen.amount_low,
        "regimen_amount_high": regimen.amount_high,
        "regimen_interval_hours": regimen.interval_hours,
        "regimen_route_iv": "IV" in regimen.routes,
        "regimen_route_sc": "SC" in regimen.routes,
    }


def _regimen_fingerprint(values: dict[str, Any]) -> dict[str, Any]:
    """A regimen as the ledger sees it: nothing at all when there is none (so studies loaded before
    regimens existed still match what was loaded), the protocol by its institution's slug."""
    if values == NO_REGIMEN:
        return {}
    protocol = values["regimen_protocol"]
    return {**values, "regimen_protocol": protocol.institution.slug if protocol is not None else None}


def _load_studies(
    seed: SeedFile,
    references: dict[str, Reference],
    protocols: dict[str, Protocol],
    ledger: _Ledger,
    report: LoadReport,
) -> None:
    existing = {
        s.key: s for s in Study.objects.select_related("regimen_protocol__institution").prefetch_related("references")
    }
    tally = _Tally("studies")

    def writer(study: Study, values: dict[str, Any], reference_keys: list[str]) -> Callable[[], None]:
        def write() -> None:
            _save(study, values)
            study.references.set([references[k].pk for k in reference_keys])

        return write

    for order, entry in enumerate(seed.studies, start=1):
        values = _study_values(entry, order)
        regimen = _regimen_values(entry, protocols)
        study = existing.get(entry.key)
        current = None
        if study is not None:
            current = (
                _fields(study, values)
                | _regimen_fingerprint(_fields(study, NO_REGIMEN))
                | {"references": sorted(r.key for r in study.references.all())}
            )
        _reconcile(
            kind=LoadedRecord.Kind.STUDY,
            key=entry.key,
            name=f"study {entry.key}",
            current=current,
            wanted=values | _regimen_fingerprint(regimen) | {"references": sorted(entry.references)},
            write=writer(study or Study(key=entry.key), values | regimen, entry.references),
            ledger=ledger,
            tally=tally,
            report=report,
        )
    report.say(tally.line())


def _create_version(
    protocol: Protocol,
    entry: ProtocolEntry,
    number: int,
    fingerprint: str,
    references: dict[str, Reference],
    test_patients: list[PatientCheckEntry],
    *,
    change_reason: str = "Loaded from the reviewed data file.",
    based_on: ProtocolVersion | None = None,
    kept_test_patients: tuple[ProtocolTestPatient, ...] = (),
) -> ProtocolVersion:
    thresholds = entry.comparison_thresholds
    version = ProtocolVersion(
        protocol=protocol,
        number=number,
        status=VersionStatus.DRAFT,
        utilization=entry.utilization,
        indications_summary=entry.indications_summary,
        notes=entry.notes,
        reported_car_target=entry.reported_car_target,
        concentration_mg_per_ml=entry.concentration_mg_per_ml,
        reported_max_mg_per_kg_per_day=thresholds.reported_max_mg_per_kg_per_day if thresholds else None,
        reported_max_basis=thresholds.reported_max_basis if thresholds else "",
        usual_daily_cap_mg=thresholds.usual_daily_cap_mg if thresholds else None,
        usual_daily_cap_basis=thresholds.usual_daily_cap_basis if thresholds else "",
        thresholds_reference=references[thresholds.citation.reference] if thresholds else None,
        thresholds_locator=thresholds.citation.locator if thresholds else "",
        label_reference=references[entry.label_reference] if entry.label_reference else None,
        change_reason=change_reason,
        source_fingerprint=fingerprint,
        based_on=based_on,
    )
    version.full_clean()
    version.save()
    for position, citation in enumerate(entry.citations):
        row = ProtocolCitation(
            version=version, reference=references[citation.reference], locator=citation.locator, position=position
        )
        row.full_clean()
        row.save()
    for position, rule_entry in enumerate(entry.rules):
        rule = IndicationRule(
            version=version,
            position=position,
            applies_to_crs="CRS" in rule_entry.toxicities,
            applies_to_icans="ICANS" in rule_entry.toxicities,
            applies_to_carhlh="carHLH" in rule_entry.toxicities,
            min_grade=rule_entry.min_grade,
            min_prior_tocilizumab_doses=rule_entry.min_prior_tocilizumab_doses,
            requires_steroids=rule_entry.requires_steroids,
            result_status=rule_entry.result_status,
            summary=rule_entry.summary,
            first_line_if_isolated_late_onset=rule_entry.first_line_if_isolated_late_onset,
            first_line_summary=rule_entry.first_line_summary,
            max_grade=rule_entry.max_grade,
            repeat_tocilizumab_from_doses=rule_entry.repeat_tocilizumab_from_doses,
            repeat_tocilizumab_note=rule_entry.repeat_tocilizumab_note,
        )
        rule.full_clean()
        rule.save()
    for position, step_entry in enumerate(entry.steps):
        step = DosingStep(
            version=version,
            position=position,
            kind=step_entry.kind,
            name=step_entry.name,
            applies_to_crs="CRS" in step_entry.toxicities,
            applies_to_icans="ICANS" in step_entry.toxicities,
            applies_to_carhlh="carHLH" in step_entry.toxicities,
            min_grade=step_entry.min_grade,
            max_grade=step_entry.max_grade,
            dose_basis=step_entry.dose_basis,
            amount_low=step_entry.amount_low,
            amount_high=step_entry.amount_high,
            interval_hours=step_entry.interval_hours,
            interval_is_maximum=step_entry.interval_is_maximum,
            route_iv="IV" in step_entry.routes,
            route_sc="SC" in step_entry.routes,
            max_single_dose_mg=step_entry.max_single_dose_mg,
            max_daily_dose_mg=step_entry.max_daily_dose_mg,
            escalation_ceiling_amount=step_entry.escalation_ceiling_amount,
            escalation_ceiling_basis=step_entry.escalation_ceiling_basis or "",
            rounding_increment_mg=step_entry.rounding_increment_mg,
            rounding_tolerance_percent=step_entry.rounding_tolerance_percent,
            duration_text=step_entry.duration,
            taper_text=step_entry.taper,
            notes=step_entry.notes,
        )
        step.full_clean()
        step.save()
        for position, key in enumerate(step_entry.citations):
            citation = StepCitation(step=step, reference=references[key], position=position)
            citation.full_clean()
            citation.save()
    for kept in kept_test_patients:
        _save(ProtocolTestPatient(version=version, label=kept.label), _fields(kept, TEST_PATIENT_FIELDS))
    for patient_entry in test_patients:
        test_patient = ProtocolTestPatient(version=version, label=patient_entry.label)
        _save(test_patient, _test_patient_values(patient_entry))
    return version


def _load_institution(
    entry: ProtocolEntry, ledger: _Ledger, report: LoadReport, tallies: dict[str, _Tally]
) -> Protocol:
    """The institution and its protocol's title: created when missing, kept when edited since loaded."""
    institution = Institution.objects.filter(slug=entry.slug).first() or Institution(slug=entry.slug)
    values = {"name": entry.institution, "short_name": entry.short_name, "location": entry.location}
    _reconcile(
        kind=LoadedRecord.Kind.INSTITUTION,
        key=entry.slug,
        name=f"institution {entry.slug}",
        current=_fields(institution, values) if institution.pk else None,
        wanted=values,
        write=lambda: _save(institution, values),
        ledger=ledger,
        tally=tallies["institutions"],
        report=report,
    )
    protocol = Protocol.objects.filter(institution=institution).first() or Protocol(institution=institution)
    title = {"title": entry.title}
    _reconcile(
        kind=LoadedRecord.Kind.PROTOCOL_TITLE,
        key=entry.slug,
        name=f"protocol title {entry.slug}",
        current=_fields(protocol, title) if protocol.pk else None,
        wanted=title,
        write=lambda: _save(protocol, title),
        ledger=ledger,
        tally=tallies["protocol titles"],
        report=report,
    )
    return protocol


def _load_protocol(
    entry: ProtocolEntry,
    protocol: Protocol,
    seed: SeedFile,
    references: dict[str, Reference],
    ledger: _Ledger,
    report: LoadReport,
    patients_tally: _Tally,
) -> None:
    """The protocol's content and test patients, as versions: each version the loader made carries its
    entry's fingerprint, and its test patients are the file's for that protocol. A protocol edited locally
    gets the file's revision as a draft for review instead (`_propose_revision`)."""
    fingerprint = protocol_fingerprint(entry)
    versions = list(protocol.versions.order_by("number"))
    edited = [v for v in versions if not v.source_fingerprint]
    patients = [t for t in seed.test_patients if t.protocol == entry.slug]
    if edited:
        _propose_revision(entry, protocol, versions, edited[-1], fingerprint, references, patients, report)
        return
    wanted = {t.label: content_fingerprint(_test_patient_values(t)) for t in patients}
    latest = versions[-1] if versions else None
    current = _test_patient_fingerprints(latest) if latest is not None else {}
    if latest is not None and latest.source_fingerprint == fingerprint and latest.status == VersionStatus.PUBLISHED:
        if current == wanted:
            for label, patient_fingerprint in wanted.items():
                ledger.remember(LoadedRecord.Kind.TEST_PATIENT, f"{entry.slug}/{label}", patient_fingerprint)
            patients_tally.unchanged += len(wanted)
            report.say(f"{entry.slug}: unchanged (version {latest.number})")
            return
        if not _test_patients_as_loaded(entry.slug, current, ledger):
            patients_tally.kept += len(set(current.items()) ^ set(wanted.items()))
            report.refused.append(f"test patients of {entry.slug}")
            report.say(
                f"{entry.slug}: test patients NOT overwritten - edited since they were loaded (version "
                f"{latest.number}); the file's test patients were not applied"
            )
            return
    number = (latest.number + 1) if latest else 1
    version = _create_version(protocol, entry, number, fingerprint, references, patients)
    _check_test_patients(version, entry.slug)
    protocol_version_publish(version=version, approved_by=None, approval_source=seed.approval_source)
    for label, patient_fingerprint in wanted.items():
        ledger.remember(LoadedRecord.Kind.TEST_PATIENT, f"{entry.slug}/{label}", patient_fingerprint)
        if label not in current:
            patients_tally.created += 1
        elif current[label] != patient_fingerprint:
            patients_tally.updated += 1
        else:
            patients_tally.unchanged += 1
    report.writes += 1
    action = "created" if number == 1 else "updated from the data file:"
    report.say(f"{entry.slug}: {action} version {number}, published")


# --- A revision of a locally edited protocol: a draft for pharmacist review --------------------------------

_MISSING = object()
NO_BASE = "No version from the data file to compare with: the local values were kept wherever they differ. "


def _sorted_names(values: Any, order: tuple[str, ...]) -> list[str]:
    return sorted(values, key=order.index)


def _rule_entry_dict(rule: IndicationRule) -> dict[str, Any]:
    return {
        "toxicities": list(rule.toxicities),
        "min_grade": rule.min_grade,
        "max_grade": rule.max_grade,
        "min_prior_tocilizumab_doses": rule.min_prior_tocilizumab_doses,
        "requires_steroids": rule.requires_steroids,
        "result_status": rule.result_status,
        "summary": rule.summary,
        "first_line_if_isolated_late_onset": rule.first_line_if_isolated_late_onset,
        "first_line_summary": rule.first_line_summary,
        "repeat_tocilizumab_from_doses": rule.repeat_tocilizumab_from_doses,
        "repeat_tocilizumab_note": rule.repeat_tocilizumab_note,
    }


def _step_entry_dict(step: DosingStep) -> dict[str, Any]:
    return {
        "kind": step.kind,
        "name": step.name,
        "toxicities": list(step.toxicities),
        "min_grade": step.min_grade,
        "max_grade": step.max_grade,
        "dose_basis": step.dose_basis,
        "amount_low": step.amount_low,
        "amount_high": step.amount_high,
        "interval_hours": step.interval_hours,
        "interval_is_maximum": step.interval_is_maximum,
        "routes": list(step.routes),
        "max_single_dose_mg": step.max_single_dose_mg,
        "max_daily_dose_mg": step.max_daily_dose_mg,
        "escalation_ceiling_amount": step.escalation_ceiling_amount,
        "escalation_ceiling_basis": step.escalation_ceiling_basis or None,
        "rounding_increment_mg": step.rounding_increment_mg,
        "rounding_tolerance_percent": step.rounding_tolerance_percent,
        "duration": step.duration_text,
        "taper": step.taper_text,
        "notes": step.notes,
        "citations": [c.reference.key for c in step.citations.all()],
    }


def _version_entry_dict(version: ProtocolVersion) -> dict[str, Any]:
    """A stored version's content in the data file's shape (ProtocolEntry, without the institution fields)."""
    thresholds = None
    if version.reported_max_mg_per_kg_per_day is not None and version.thresholds_reference_id:
        thresholds = {
            "reported_max_mg_per_kg_per_day": version.reported_max_mg_per_kg_per_day,
            "reported_max_basis": version.reported_max_basis,
            "usual_daily_cap_mg": version.usual_daily_cap_mg,
            "usual_daily_cap_basis": version.usual_daily_cap_basis,
            "citation": {"reference": version.thresholds_reference.key, "locator": version.thresholds_locator},
        }
    return {
        "utilization": version.utilization,
        "indications_summary": version.indications_summary,
        "reported_car_target": version.reported_car_target,
        "concentration_mg_per_ml": version.concentration_mg_per_ml,
        "notes": version.notes,
        "citations": [{"reference": c.reference.key, "locator": c.locator} for c in version.citations.all()],
        "rules": [_rule_entry_dict(r) for r in version.rules.all()],
        "steps": [_step_entry_dict(s) for s in version.steps.all()],
        "comparison_thresholds": thresholds,
        "label_reference": version.label_reference.key if version.label_reference_id else None,
    }


def _file_entry_dict(entry: ProtocolEntry) -> dict[str, Any]:
    values = entry.model_dump(mode="python", exclude={"slug", "institution", "short_name", "location", "title"})
    for row in (*values["rules"], *values["steps"]):
        row["toxicities"] = _sorted_names([str(t) for t in row["toxicities"]], ("CRS", "ICANS", "carHLH"))
    for step in values["steps"]:
        step["routes"] = _sorted_names([str(r) for r in step["routes"]], ("IV", "SC"))
        step["kind"], step["dose_basis"] = str(step["kind"]), str(step["dose_basis"])
    return values


def _same(first: Any, second: Any) -> bool:
    return _canonical(first) == _canonical(second)


@dataclass
class _Merge:
    """Three-way merge of the file's revision into a locally edited version: a value the file changed is taken
    unless the pharmacists changed it too (then theirs is kept and the conflict named)."""

    taken: list[str] = field(default_factory=list)
    conflicts: list[str] = field(default_factory=list)

    def value(self, what: str, base: Any, local: Any, revised: Any) -> Any:
        if _same(local, revised) or (base is not _MISSING and _same(revised, base)):
            return local
        if base is not _MISSING and _same(local, base):
            self.taken.append(what)
            return revised
        self.conflicts.append(what)
        return local

    def row(self, what: str, base: dict | None, local: dict, revised: dict) -> dict:
        base = base or {}
        return {
            name: self.value(f"{what}: {name}", base.get(name, _MISSING), local[name], revised[name])
            for name in revised
        }


def _merged_entry(base: dict[str, Any] | None, local: dict[str, Any], revised: dict[str, Any], merge: _Merge):
    merged: dict[str, Any] = {}
    for name in ("utilization", "indications_summary", "reported_car_target", "concentration_mg_per_ml", "notes"):
        merged[name] = merge.value(name, base[name] if base else _MISSING, local[name], revised[name])
    for name in ("citations", "comparison_thresholds", "label_reference"):
        merged[name] = merge.value(name, base[name] if base else _MISSING, local[name], revised[name])
    # Rules have no names: merged row by row when every side has as many, else as one list.
    base_rules = base["rules"] if base else None
    if base_rules is not None and len(base_rules) == len(local["rules"]) == len(revised["rules"]):
        merged["rules"] = [
            merge.row(f"rule {n}", b, lo, r)
            for n, (b, lo, r) in enumerate(zip(base_rules, local["rules"], revised["rules"], strict=True), start=1)
        ]
    else:
        merged["rules"] = merge.value("indication rules", base_rules or _MISSING, local["rules"], revised["rules"])
    # Steps by name: a step the file adds is added, one it drops is dropped unless edited locally.
    base_steps = {s["name"]: s for s in base["steps"]} if base else {}
    local_steps = {s["name"]: s for s in local["steps"]}
    steps = []
    for step in revised["steps"]:
        name = step["name"]
        if name in local_steps:
            steps.append(merge.row(f"step {name!r}", base_steps.get(name), local_steps[name], step))
        elif name in base_steps:
            merge.conflicts.append(f"step {name!r} (removed or renamed locally; the file's version not added)")
        else:
            merge.taken.append(f"step {name!r} (added)")
            steps.append(step)
    revised_names = {s["name"] for s in revised["steps"]}
    for name, step in local_steps.items():
        if name in revised_names:
            continue
        if name in base_steps and _same(step, base_steps[name]):
            merge.taken.append(f"step {name!r} (removed)")
        else:
            steps.append(step)
            if name in base_steps:
                merge.conflicts.append(f"step {name!r} (dropped by the file, edited locally: kept)")
    merged["steps"] = steps
    return merged


def _propose_revision(
    entry: ProtocolEntry,
    protocol: Protocol,
    versions: list[ProtocolVersion],
    edited: ProtocolVersion,
    fingerprint: str,
    references: dict[str, Reference],
    patients: list[PatientCheckEntry],
    report: LoadReport,
) -> ProtocolVersion | None:
    """The file changed a protocol that pharmacists have edited: never overwrite their version; propose the
    revision as a draft (their edits kept, the file's changes merged in) for two-person review instead.
    The draft keeps the published version's test patients and adds the file's new ones (by label); any that
    fail on it are reported, and block its submission until a pharmacist resolves them."""
    slug = entry.slug
    report.refused.append(f"protocol {slug}")
    prefix = (
        f"{slug}: NOT overwritten - edited since it was loaded (version {edited.number} is "
        f"{edited.get_status_display().lower()}, not from the data file)"
    )
    loaded = [v for v in versions if v.source_fingerprint]
    carrying = loaded[-1] if loaded and loaded[-1].source_fingerprint == fingerprint else None
    if carrying is not None:
        state = carrying.get_status_display().lower()
        if carrying.status in OPEN_STATUSES:
            report.say(
                f"{prefix}; the file's revision waits for pharmacist review as version {carrying.number} ({state})"
            )
        else:
            report.say(f"{prefix}; the file's entry is already in version {carrying.number} ({state})")
        return None
    open_version = next((v for v in versions if v.status in OPEN_STATUSES), None)
    if open_version is not None:
        report.say(
            f"{prefix}; the file's revision was not proposed because version {open_version.number} is "
            f"{open_version.get_status_display().lower()}: finish or delete it, then load again"
        )
        return None
    published = next((v for v in reversed(versions) if v.status == VersionStatus.PUBLISHED), None)
    if published is None:
        report.say(f"{prefix}; the file's entry was not applied (no published version to revise)")
        return None
    loaded = [v for v in loaded if v.status not in OPEN_STATUSES]
    content = versions_with_content(ProtocolVersion.objects.filter(pk__in=[published.pk, *(v.pk for v in loaded[-1:])]))
    by_pk = {v.pk: v for v in content}
    base = _version_entry_dict(by_pk[loaded[-1].pk]) if loaded else None
    merge = _Merge()
    merged = _merged_entry(base, _version_entry_dict(by_pk[published.pk]), _file_entry_dict(entry), merge)
    if not merge.taken:  # the draft would equal the published version: nothing to review
        kept = f"; changed both locally and in the file, local value kept: {'; '.join(merge.conflicts)}"
        report.say(f"{prefix}; the file's revision changes nothing left as loaded{kept if merge.conflicts else ''}")
        return None
    identity = entry.model_dump(include={"slug", "institution", "short_name", "location", "title"})
    revision = ProtocolEntry.model_validate({**identity, **merged})
    kept = "; ".join(merge.conflicts) or "none"
    reason = (
        f"Proposed by the data-file loader for pharmacist review: the reviewed data file's revision, merged into "
        f"version {published.number} (edited locally). Taken from the file: {'; '.join(merge.taken) or 'nothing'}. "
        f"Changed both locally and in the file, local value kept (check these): {kept}. "
        f"{'' if base else NO_BASE}"
        "Submit and approve it as any draft (two-person rule); nothing changes for clinicians until then."
    )
    number = versions[-1].number + 1
    kept_patients = tuple(published.test_patients.all())
    kept_labels = {tp.label for tp in kept_patients}
    draft = _create_version(
        protocol,
        revision,
        number,
        fingerprint,
        references,
        [t for t in patients if t.label not in kept_labels],
        change_reason=reason,
        based_on=published,
        kept_test_patients=kept_patients,
    )
    report.writes += 1
    report.say(
        f"{prefix}; the file's revision was proposed as draft version {number} for pharmacist review "
        f"({len(merge.taken)} change(s) taken, {len(merge.conflicts)} kept as edited locally)"
    )
    report.lines += [
        f"{slug}: test patient {outcome.expectation.label!r} fails on draft version {number}: {problem}"
        for outcome in protocol_test_patients_check(version_id=draft.pk)
        for problem in outcome.problems
    ]
    return draft


def _test_patient_fingerprints(version: ProtocolVersion) -> dict[str, str]:
    return {tp.label: content_fingerprint(_fields(tp, TEST_PATIENT_FIELDS)) for tp in version.test_patients.all()}


def _test_patients_as_loaded(slug: str, current: dict[str, str], ledger: _Ledger) -> bool:
    """Whether a version's test patients are exactly what the loader last wrote for this protocol."""
    prefix = f"{slug}/"
    recorded = {
        key[len(prefix) :]: row.fingerprint
        for (kind, key), row in ledger.rows.items()
        if kind == LoadedRecord.Kind.TEST_PATIENT and key.startswith(prefix)
    }
    return recorded == current


TEST_PATIENT_FIELDS = (
    "inputs",
    "expected_status",
    "expected_step_name",
    "expected_per_dose_low_mg",
    "expected_per_dose_high_mg",
    "expected_per_day_low_mg",
    "expected_per_day_high_mg",
    "arithmetic",
)


def _test_patient_values(entry: PatientCheckEntry) -> dict[str, Any]:
    per_dose = entry.per_dose_mg or (None, None)
    per_day = entry.per_day_mg or (None, None)
    return {
        "inputs": entry.inputs,
        "expected_status": entry.expected_status,
        "expected_step_name": entry.step,
        "expected_per_dose_low_mg": per_dose[0],
        "expected_per_dose_high_mg": per_dose[1],
        "expected_per_day_low_mg": per_day[0],
        "expected_per_day_high_mg": per_day[1],
        "arithmetic": entry.arithmetic,
    }


def _check_test_patients(version: ProtocolVersion, slug: str) -> None:
    """A loaded version's test patients must pass on it before it is published."""
    problems = [
        f"{slug}: {outcome.expectation.label}: {problem}"
        for outcome in protocol_test_patients_check(version_id=version.pk)
        for problem in outcome.problems
    ]
    if problems:
        raise SeedFileError("test patients fail on the published protocols: " + "; ".join(problems))


def _smoke_patients() -> list[PatientInputs]:
    return [
        PatientInputs(
            weight_kg=Decimal(weight),
            age_years=Decimal(10),
            toxicities=tuple(ToxicityGrade(t, grade) for t in Toxicity),
            prior_tocilizumab_doses=1,
            prior_steroids=True,
        )
        for grade in (1, 2, 3, 4)
        for weight in ("1", "20", "150")
    ]


def clinical_data_load(*, path: Path = SEED_PATH, check_only: bool = False) -> LoadReport:
    """Load (or with `check_only`, fully validate then roll back) the seed data file."""
    seed = seed_file_parse(path=path)
    report = LoadReport()
    with transaction.atomic():
        ledger = _Ledger.read()
        references = _load_references(seed, ledger, report)
        tallies = {"institutions": _Tally("institutions"), "protocol titles": _Tally("protocol titles")}
        patients_tally = _Tally("test patients")
        protocols: dict[str, Protocol] = {}
        for entry in seed.protocols:
            protocol = _load_institution(entry, ledger, report, tallies)
            _load_protocol(entry, protocol, seed, references, ledger, report, patients_tally)
            protocols[entry.slug] = protocol
        # After the protocols: a study's regimen names the protocol it is shown with.
        _load_studies(seed, references, protocols, ledger, report)
        report.lines += [tally.line() for tally in (*tallies.values(), patients_tally)]
        # Every loaded protocol must run through the engine, at every grade, before anything is committed.
        protocols = published_protocols_load()
        for patient in _smoke_patients():
            recommend_all(protocols=protocols, patient=patient)
        if check_only:
            transaction.set_rollback(True)
    return report
