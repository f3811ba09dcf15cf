"""CDS Hooks writes: the cards answered (recorded as issued) and card feedback. The JWT replay store is
`cds_hooks.replay`."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from audit.services import audit_record
from cds_hooks import cards as card_builders
from cds_hooks import wording
from cds_hooks.catalog import LOINC_WEIGHT_QUERY, WEIGHT_SEARCH_COUNT, CdsService
from cds_hooks.fhir_client import FhirUnavailable, SearchResult, fhir_get, search_pages
from cds_hooks.fhir_read import (
    MedicationCodes,
    age_years,
    anakinra_allergies,
    anakinra_drafts,
    birth_date,
    body_weight,
    draft_reading,
    is_anakinra_medication,
    is_body_weight,
    is_fhir_id,
    medication_names,
    medication_reference_id,
    selected,
    unnamed_medication_requests,
    unreadable_weight,
    weight_age_problem,
)
from cds_hooks.schemas import FeedbackItem, FeedbackRequest, HookRequest, feedback_entries
from cds_hooks.selectors import CARD_SUBJECT, issued_card_details
from engine import limits
from engine.order_check import order_check, protocol_limits, stated_caps_exceeded
from protocols.selectors.catalog import published_protocols

if TYPE_CHECKING:
    from cds_hooks.auth import CdsClient

logger = logging.getLogger(__name__)


# --- Hook calls -------------------------------------------------------------------------------------


class PreconditionFailed(Exception):
    """Required FHIR data is neither prefetched nor readable from the EHR's FHIR server."""


@dataclass(frozen=True, slots=True)
class _Reader:
    """Prefetched data, or a read from the EHR's FHIR server when the prefetch key is absent."""

    prefetch: dict[str, Any]
    server: str | None
    access_token: str | None
    patient_id: str
    medication_codes: MedicationCodes

    def can_fetch(self) -> bool:
        return self.server is not None and self.access_token is not None and is_fhir_id(self.patient_id)

    def available(self, key: str) -> bool:
        return key in self.prefetch or self.can_fetch()

    def get(self, key: str, path: str, params: dict[str, str]) -> Any:
        """The prefetched value (null means "no data"), else a fetch; FhirUnavailable when neither works."""
        if key in self.prefetch:
            return self.prefetch[key]
        if not self.can_fetch():
            raise FhirUnavailable(f"{key} not prefetched and no FHIR server access")
        assert self.server is not None and self.access_token is not None
        return fhir_get(base_url=self.server, path=path, params=params, access_token=self.access_token)

    def search(
        self,
        key: str,
        path: str,
        params: dict[str, str],
        *,
        enough: Callable[[list[dict[str, Any]]], bool] = lambda resources: False,
    ) -> SearchResult:
        """Every page of a search (prefetched or read): `fhir_client.search_pages`, reading later pages
        from the allowed FHIR server only. FhirUnavailable when the first page cannot be had at all."""
        first = self.get(key, path, params)
        if not self.can_fetch():
            return search_pages(first, base_url=None, access_token=None, enough=enough)
        return search_pages(first, base_url=self.server, access_token=self.access_token, enough=enough)


def _reader(request: HookRequest, client: CdsClient) -> _Reader:
    server = request.fhirServer
    token = request.fhirAuthorization.access_token if request.fhirAuthorization is not None else None
    if server is not None and not client.issuer.fhir_server_allowed(server):
        server = None
    return _Reader(
        prefetch=request.prefetch or {},
        server=server,
        access_token=token,
        patient_id=request.context.patientId,
        medication_codes=client.issuer.medication_codes,
    )


def _referenced_anakinra(draft_orders: Any, reader: _Reader) -> list[dict[str, Any]]:
    """Drafts naming no medication: a `Medication/{id}` reference is read from the EHR's FHIR server
    when it is allowed. What still cannot be identified gets no card; only their count is logged."""
    found, unidentified = [], 0
    for request in unnamed_medication_requests(draft_orders, codes=reader.medication_codes):
        medication_id = medication_reference_id(request)
        medication = None
        if medication_id is not None and reader.can_fetch():
            assert reader.server is not None and reader.access_token is not None
            try:
                medication = fhir_get(
                    base_url=reader.server,
                    path=f"Medication/{medication_id}",
                    params={},
                    access_token=reader.access_token,
                )
            except FhirUnavailable:
                medication = None
        if is_anakinra_medication(medication, codes=reader.medication_codes):
            found.append(request)
        elif not medication_names(medication):
            unidentified += 1
    if unidentified:
        # A count only: no token, no patient or order data in the log.
        logger.warning(
            "CDS Hooks: %d drafted medication order(s) could not be identified and were not checked", unidentified
        )
    return found


def _allergy_check(reader: _Reader) -> card_builders.AllergyCheck:
    """Anakinra allergies from the whole allergy list; a list that could not be read in full is "not
    checked" (with why), never "none recorded"."""
    if not reader.available("allergies"):
        return card_builders.AllergyCheck(not_checked="no allergy data from the EHR")
    try:
        result = reader.search("allergies", "AllergyIntolerance", {"patient": reader.patient_id})
    except FhirUnavailable as error:
        return card_builders.AllergyCheck(not_checked=f"the allergy list could not be read ({error})")
    findings = anakinra_allergies(result.resources, codes=reader.medication_codes)
    not_checked = None
    if result.problem:
        not_checked = f"the allergy list could not be read in full: {result.problem}"
    elif findings.unidentified:
        not_checked = f"{findings.unidentified} current allergy record(s) name no substance that can be read"
    return card_builders.AllergyCheck(recorded=tuple(findings.recorded), not_checked=not_checked)


def _facts(reader: _Reader) -> card_builders.Facts:
    """What the EHR sent. Without a weight the dose cannot be checked: 412, unless an anakinra allergy
    is recorded, which is answered (contraindicated) whatever the weight."""
    patient_id = reader.patient_id
    allergies = _allergy_check(reader)
    try:
        patient_data = reader.get("patient", f"Patient/{patient_id}", {})
    except FhirUnavailable:
        patient_data = None
    age = age_years(patient_data, today=timezone.localdate())
    try:
        # Sorted newest first: once a page holds a body weight, later pages are not read.
        weight_result = reader.search(
            "weight",
            "Observation",
            {"patient": patient_id, "code": LOINC_WEIGHT_QUERY, "_sort": "-date", "_count": WEIGHT_SEARCH_COUNT},
            enough=lambda resources: any(is_body_weight(r) for r in resources),
        )
    except FhirUnavailable as error:
        if allergies.recorded:
            return card_builders.Facts(weight=None, age_years=age, allergies=allergies)
        raise PreconditionFailed(str(error)) from None
    problem = weight_result.problem
    weight = unreadable_weight(problem) if problem else body_weight(weight_result.resources)
    weight_age = weight_age_problem(
        weight=weight,
        born=birth_date(patient_data),
        now=timezone.now(),
        max_age_days=settings.CDS_HOOKS_WEIGHT_MAX_AGE_DAYS,
    )
    return card_builders.Facts(weight=weight, age_years=age, allergies=allergies, weight_age=weight_age)


def _setting(client: CdsClient, base_url: str) -> card_builders.CardSetting:
    slug = client.issuer.institution_for(client.tenant)
    protocols = published_protocols(institution_slug=slug) if slug else ()
    return card_builders.CardSetting(
        base_url=base_url,
        protocol=protocols[0] if protocols else None,
        institution_slug=slug,
        smart_launch=client.issuer.smart is not None,
    )


def _draft_card(request: dict[str, Any], facts: card_builders.Facts, setting: card_builders.CardSetting) -> dict:
    weight = facts.weight.kg if facts.weight is not None else None
    reading = draft_reading(request, weight_kg=weight)
    draft_ref = f"MedicationRequest/{request.get('id', '(no id)')}"
    if setting.protocol is None:
        reason, summary = wording.no_protocol(setting.institution_slug)
        return card_builders.unchecked_card(
            reason=reason,
            summary=summary,
            facts=facts,
            setting=setting,
            draft=reading,
            draft_ref=draft_ref,
        )
    if _usable_weight(facts) is None:
        # Without a usable weight, an mg/kg dose cannot be read, but the stated caps still hold.
        if weight is not None:
            reading = draft_reading(request, weight_kg=None)
        above_caps = tuple(
            stated_caps_exceeded(
                per_dose_mg=reading.dose.top_per_dose_mg,
                per_day_mg=reading.dose.top_per_day_mg,
                steps=setting.protocol.steps,
            )
        )
        if weight is None:
            assert facts.weight is not None
            reason, summary = wording.no_usable_weight(problem=facts.weight.problem, unreadable=facts.weight.unreadable)
        else:
            reason, summary = wording.weight_out_of_range(weight)
        return card_builders.unchecked_card(
            reason=reason,
            summary=summary,
            facts=facts,
            setting=setting,
            draft=reading,
            draft_ref=draft_ref,
            above_caps=above_caps,
        )
    check = order_check(protocol=setting.protocol, weight_kg=weight, draft=reading.dose)
    return card_builders.dose_card(check=check, draft=reading, request=request, facts=facts, setting=setting)


def _usable_weight(facts: card_builders.Facts) -> Decimal | None:
    weight = facts.weight.kg if facts.weight is not None else None
    if weight is None or not limits.WEIGHT_KG.contains(weight):
        return None
    return weight


def _duplicates_card(
    drafts: list[dict[str, Any]], facts: card_builders.Facts, setting: card_builders.CardSetting
) -> dict[str, Any]:
    weight = _usable_weight(facts)
    lines = [
        card_builders.DraftLine(
            ref=f"MedicationRequest/{d.get('id', '(no id)')}",
            reading=draft_reading(d, weight_kg=weight),
            deletable=is_fhir_id(d.get("id")),
        )
        for d in drafts
    ]
    limits = protocol_limits(protocol=setting.protocol, weight_kg=weight) if setting.protocol is not None else None
    return card_builders.duplicates_card(lines=lines, limits=limits, weight_kg=weight, facts=facts, setting=setting)


def _issued_record(*, cards: list[dict], service: CdsService, request: HookRequest, client: CdsClient) -> None:
    """What was answered, so feedback on a card can be read against it. No patient identifiers."""
    with transaction.atomic():
        _issued_record_each(cards=cards, service=service, request=request, client=client)


def _issued_record_each(*, cards: list[dict], service: CdsService, request: HookRequest, client: CdsClient) -> None:
    for card in cards:
        audit_record(
            action="cds_card.issued",
            subject_type=CARD_SUBJECT,
            subject_id=card["uuid"],
            actor_label=client.issuer.iss,
            details={
                "service": service.id,
                "hook_instance": request.hookInstance,
                "indicator": card["indicator"],
                "summary": card["summary"],
                "source": card["source"]["label"],
                "suggestions": [{"uuid": s["uuid"], "label": s["label"]} for s in card.get("suggestions", [])],
            },
        )


def hook_response_create(
    *, service: CdsService, request: HookRequest, client: CdsClient, base_url: str
) -> dict[str, Any]:
    """The cards for one hook call. Raises PreconditionFailed when the weight cannot be obtained.
    FHIR reads happen before any write, outside a transaction."""
    selections = request.context.selections if service.hook == "order-select" else None
    reader = _reader(request, client)
    # Every anakinra draft, selected or not, counts towards what would be given in a day.
    every_draft = anakinra_drafts(
        request.context.draftOrders, None, codes=client.issuer.medication_codes
    ) + _referenced_anakinra(request.context.draftOrders, reader)
    drafts = selected(every_draft, selections)
    if not drafts:
        return {"cards": []}
    facts = _facts(reader)
    setting = _setting(client, base_url)
    if facts.allergies.recorded:
        cards = [card_builders.contraindication_card(facts=facts, setting=setting)]
    else:
        # Beside another anakinra order no card is `info`, and each says so.
        facts = replace(facts, anakinra_orders=len(every_draft))
        cards = [_draft_card(draft, facts, setting) for draft in drafts]
        if len(every_draft) > 1:
            cards.insert(0, _duplicates_card(every_draft, facts, setting))
    _issued_record(cards=cards, service=service, request=request, client=client)
    return {"cards": cards}


# --- Feedback ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FeedbackOutcome:
    recorded: list[int]  # the indexes, in the request, of the entries recorded
    errors: dict[str, list[str]]  # why each of the others was not, keyed "feedback.<index>.<field>"


def _feedback_problems(
    *, service: CdsService, index: int, item: FeedbackItem, client: CdsClient
) -> dict[str, list[str]]:
    """An entry must name a card this service issued to this issuer; accepted suggestions must be its own."""
    issued = issued_card_details(card_uuid=item.card, service_id=service.id, issuer=client.issuer.iss)
    if issued is None:
        return {f"feedback.{index}.card": [f"No card {item.card!r} was issued by this service to this EHR."]}
    offered = {s.get("uuid") for s in issued.get("suggestions") or []}
    unknown = [s.id for s in item.acceptedSuggestions or [] if s.id not in offered]
    if unknown:
        return {
            f"feedback.{index}.acceptedSuggestions": [
                f"Card {item.card!r} offered no suggestion {', '.join(repr(u) for u in unknown)}."
            ]
        }
    return {}


@transaction.atomic
def feedback_record(*, service: CdsService, request: FeedbackRequest, client: CdsClient) -> FeedbackOutcome:
    """One audit event per valid feedback entry: accepted suggestions, or the override and its reason.
    An invalid entry (malformed, null or empty values, a card or suggestion never issued) is not recorded,
    and the others still are (CDS Hooks lets a client send feedback on many cards at once); the outcome
    says which were not, and why."""
    entries, errors = feedback_entries(request)
    recorded: list[int] = []
    for index, item in entries:
        problems = _feedback_problems(service=service, index=index, item=item, client=client)
        if problems:
            errors.update(problems)
            continue
        recorded.append(index)
        reason_parts = []
        override: dict[str, Any] | None = None
        if item.overrideReason is not None:
            coding = item.overrideReason.reason
            if coding is not None:
                reason_parts.append(coding.display or coding.code)
            if item.overrideReason.userComment:
                reason_parts.append(item.overrideReason.userComment)
            override = {
                "reason": coding.model_dump(include={"system", "code", "display"}, exclude_none=True)
                if coding
                else None,
                "user_comment": item.overrideReason.userComment,
            }
        audit_record(
            action=f"cds_card.{item.outcome}",
            subject_type=CARD_SUBJECT,
            subject_id=item.card,
            actor_label=client.issuer.iss,
            reason=" - ".join(reason_parts),
            details={
                "service": service.id,
                "outcome": item.outcome,
                "accepted_suggestions": [s.id for s in item.acceptedSuggestions or []],
                "override_reason": override,
                "outcome_timestamp": item.outcomeTimestamp.isoformat(),
            },
        )
    # Every key is "feedback.<index>...": the problems in the order of the entries.
    ordered = dict(sorted(errors.items(), key=lambda item: int(item[0].split(".")[1])))
    if recorded and errors:
        # Counts only: a client sending bad feedback should be visible to whoever runs the service.
        refused = len(request.feedback) - len(recorded)
        logger.warning("CDS Hooks feedback: %d entries recorded, %d refused", len(recorded), refused)
    return FeedbackOutcome(recorded=recorded, errors=ordered)
