"""Load the reviewed seed data file into the database, idempotently and without overwriting edits.

Per protocol: a new institution gets version 1, published. A protocol whose every version came
from this loader is left alone when the file entry is unchanged, and gets a new published
version when it changed. A protocol that anyone has edited since (any version not made by the
loader, draft or published) is never touched: the report says so instead.
"""

from __future__ import annotations

import hashlib
import json
import tomllib
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from django.db import transaction
from pydantic import ValidationError

from engine.data import PatientInputs, ToxicityGrade
from engine.recommend import recommend_all
from engine.vocabulary import Toxicity
from evidence.models import Reference, Study
from protocols.models import (
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
from protocols.patient_checks import expectation_check
from protocols.seed_schema import ProtocolEntry, ReferenceEntry, SeedFile, StudyEntry
from protocols.selectors import published_protocols_load, test_patient_expectation
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


def _reference_values(entry: ReferenceEntry) -> dict[str, Any]:
    values = entry.model_dump(exclude={"key", "number"})
    values["letter_ref_number"] = entry.number
    return values


def _load_references(seed: SeedFile, report: LoadReport) -> dict[str, Reference]:
    existing = {r.key: r for r in Reference.objects.all()}
    created = updated = 0
    for entry in seed.references:
        values = _reference_values(entry)
        reference = existing.get(entry.key)
        if reference is None:
            reference = Reference(key=entry.key, **values)
            created += 1
        elif _sync(reference, values):
            updated += 1
        else:
            continue
        reference.full_clean()
        reference.save()
        existing[entry.key] = reference
    report.writes += created + updated
    report.say(
        f"references: {created} created, {updated} updated, {len(seed.references) - created - updated} unchanged"
    )
    return existing


def _study_values(entry: StudyEntry, order: int) -> dict[str, Any]:
    values = entry.model_dump(exclude={"key", "toxicities", "references"})
    values["n_patients"] = entry.n_patients
    values["table_order"] = order
    values["addresses_crs"] = "CRS" in entry.toxicities
    values["addresses_icans"] = "ICANS" in entry.toxicities
    values["addresses_carhlh"] = "carHLH" in entry.toxicities
    return values


def _load_studies(seed: SeedFile, references: dict[str, Reference], report: LoadReport) -> None:
    existing = {s.key: s for s in Study.objects.prefetch_related("references")}
    created = updated = 0
    for order, entry in enumerate(seed.studies, start=1):
        values = _study_values(entry, order)
        study = existing.get(entry.key)
        wanted_refs = {references[k].pk for k in entry.references}
        if study is None:
            study = Study(key=entry.key, **values)
            study.full_clean()
            study.save()
            study.references.set(wanted_refs)
            created += 1
            continue
        fields_changed = _sync(study, values)
        refs_changed = {r.pk for r in study.references.all()} != wanted_refs
        if fields_changed:
            study.full_clean()
            study.save()
        if refs_changed:
            study.references.set(wanted_refs)
        updated += fields_changed or refs_changed
    report.writes += created + updated
    report.say(f"studies: {created} created, {updated} updated, {len(seed.studies) - created - updated} unchanged")


def _create_version(
    protocol: Protocol, entry: ProtocolEntry, number: int, fingerprint: str, references: dict[str, Reference]
) -> ProtocolVersion:
    version = ProtocolVersion(
        protocol=protocol,
        number=number,
        status=VersionStatus.DRAFT,
        utilization=entry.utilization,
        indications_summary=entry.indications_summary,
        notes=entry.notes,
        reported_car_target=entry.reported_car_target,
        concentration_mg_per_ml=entry.concentration_mg_per_ml,
        change_reason="Loaded from the reviewed data file.",
        source_fingerprint=fingerprint,
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
    return version


def _load_protocol(entry: ProtocolEntry, seed: SeedFile, references: dict[str, Reference], report: LoadReport) -> None:
    fingerprint = protocol_fingerprint(entry)
    institution = Institution.objects.filter(slug=entry.slug).first()
    institution_values = {"name": entry.institution, "short_name": entry.short_name, "location": entry.location}
    if institution is None:
        institution = Institution(slug=entry.slug, **institution_values)
        institution.full_clean()
        institution.save()
        report.writes += 1
    protocol = Protocol.objects.filter(institution=institution).first()
    if protocol is None:
        protocol = Protocol(institution=institution, title=entry.title)
        protocol.full_clean()
        protocol.save()
        report.writes += 1

    versions = list(protocol.versions.order_by("number"))
    edited = [v for v in versions if not v.source_fingerprint]
    if edited:
        newest = edited[-1]
        message = (
            f"{entry.slug}: NOT overwritten - edited since it was loaded (version {newest.number} is "
            f"{newest.get_status_display().lower()}, not from the data file); the file's entry was not applied"
        )
        report.refused.append(entry.slug)
        report.say(message)
        return
    latest = versions[-1] if versions else None
    if latest is not None and latest.source_fingerprint == fingerprint and latest.status == VersionStatus.PUBLISHED:
        if _sync(institution, institution_values):
            institution.full_clean()
            institution.save()
            report.writes += 1
            report.say(f"{entry.slug}: institution details updated; protocol unchanged (version {latest.number})")
        else:
            report.say(f"{entry.slug}: unchanged (version {latest.number})")
        return
    if _sync(institution, institution_values):
        institution.full_clean()
        institution.save()
    number = (latest.number + 1) if latest else 1
    version = _create_version(protocol, entry, number, fingerprint, references)
    protocol_version_publish(version=version, approved_by=None, approval_source=seed.approval_source)
    report.writes += 1
    action = "created" if number == 1 else "updated from the data file:"
    report.say(f"{entry.slug}: {action} version {number}, published")


def _load_test_patients(seed: SeedFile, report: LoadReport) -> list[ProtocolTestPatient]:
    """Add the file's test patients that are missing (by protocol and label); never change one."""
    protocols = {p.institution.slug: p for p in Protocol.objects.select_related("institution")}
    present = set(ProtocolTestPatient.objects.values_list("protocol__institution__slug", "label"))
    created = []
    for entry in seed.test_patients:
        if (entry.protocol, entry.label) in present:
            continue
        per_dose = entry.per_dose_mg or (None, None)
        per_day = entry.per_day_mg or (None, None)
        test_patient = ProtocolTestPatient(
            protocol=protocols[entry.protocol],
            label=entry.label,
            inputs=entry.inputs,
            expected_status=entry.expected_status,
            expected_step_name=entry.step,
            expected_per_dose_low_mg=per_dose[0],
            expected_per_dose_high_mg=per_dose[1],
            expected_per_day_low_mg=per_day[0],
            expected_per_day_high_mg=per_day[1],
            arithmetic=entry.arithmetic,
        )
        test_patient.full_clean()
        test_patient.save()
        created.append(test_patient)
    report.writes += len(created)
    report.say(f"test patients: {len(created)} created, {len(seed.test_patients) - len(created)} already present")
    return created


def _check_test_patients(created: list[ProtocolTestPatient], protocols) -> None:
    """New test patients must pass on the published versions they were written for."""
    by_slug = {p.institution_slug: p for p in protocols}
    problems = []
    for test_patient in created:
        outcome = expectation_check(
            expectation=test_patient_expectation(test_patient), protocol=by_slug[test_patient.protocol.institution.slug]
        )
        problems += [f"{test_patient}: {problem}" for problem in outcome.problems]
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
        references = _load_references(seed, report)
        _load_studies(seed, references, report)
        for entry in seed.protocols:
            _load_protocol(entry, seed, references, report)
        created_test_patients = _load_test_patients(seed, report)
        # Every loaded protocol must run through the engine, at every grade, before anything is committed.
        protocols = published_protocols_load()
        for patient in _smoke_patients():
            recommend_all(protocols=protocols, patient=patient)
        _check_test_patients(created_test_patients, protocols)
        if check_only:
            transaction.set_rollback(True)
    return report
