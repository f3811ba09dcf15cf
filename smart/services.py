"""SMART launch writes: start an authorization, finish it (token, ID token, the local account, the EHR's
data into the wizard), and end the patient context.

Every launch from a registered EHR is audited (`smart.launch`, or `smart.launch_refused` with why): the
user, the registration, the time. Never the patient: the patient id, the tokens and what was read
live only in the session (`smart.session`).
"""

from __future__ import annotations

import hashlib
import secrets
import time
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model, login
from django.contrib.auth.models import AbstractBaseUser, Group
from django.contrib.sessions.backends.base import SessionBase
from django.db import IntegrityError, transaction
from django.http import HttpRequest
from django.utils import timezone

from accounts.roles import CLINICIAN
from audit.services import audit_record
from bedside import wizard
from bedside.forms import SOME_APPLY, TRUE
from bedside.selectors import published_institution_choices
from cds_hooks.app_context import draft_order_from_app_context
from cds_hooks.catalog import LOINC_WEIGHT_QUERY, WEIGHT_SEARCH_COUNT
from cds_hooks.config import Issuer
from cds_hooks.fhir_client import FhirUnavailable, SearchResult, fhir_get, search_pages
from cds_hooks.fhir_read import (
    age_years,
    anakinra_allergies,
    birth_date,
    body_weight,
    is_body_weight,
    unreadable_weight,
)
from cds_hooks.smart_config import SmartRegistration, UserMapping
from smart import oauth, prefill
from smart.models import EhrUserLink
from smart.oauth import LaunchFailed
from smart.selectors import is_smart_session, patient_context_get, smart_issuer_get
from smart.session import (
    CONTEXT_MAX_SECONDS,
    PATIENT_KEY,
    PENDING_KEY,
    PENDING_MAX,
    PENDING_MAX_SECONDS,
    SMART_KEY,
    PatientContext,
    PendingAuthorization,
)

AUDIT_SUBJECT = "smart_registration"
# The length of the hash in a created account's username ("ehr-" + 16 hex digits).
CREATED_USERNAME_HASH = 16


def smart_session_mark(*, session: SessionBase, issuer: Issuer) -> None:
    """This session now belongs to a launch from `issuer`'s EHR (SameSite=None; Partitioned cookies, framing
    by its origins). A session that was not a SMART one gets a new key first: its cookie changes kind, and
    the old cookie must not name a live session."""
    if not is_smart_session(session=session) and session.session_key is not None:
        session.cycle_key()
    session[SMART_KEY] = {"registration": issuer.iss}


def launch_begin(
    *, session: SessionBase, issuer: Issuer, fhir_server: str, launch: str | None, redirect_uri: str
) -> str:
    """Discovery, then the authorization request (PKCE S256, state, nonce, aud); returns its URL. An EHR
    launch passes its `launch` back and asks scope `launch`; a standalone one asks `launch/patient`."""
    registration = issuer.smart
    assert registration is not None
    configuration = oauth.discover(fhir_server=fhir_server)
    pkce = oauth.pkce_pair()
    state, nonce = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
    scope = oauth.requested_scope(configuration=configuration, ehr_launch=launch is not None)
    now = time.time()
    pending = {
        key: value
        for key, value in (session.get(PENDING_KEY) or {}).items()
        if isinstance(value, dict) and now - value.get("created_at", 0) < PENDING_MAX_SECONDS
    }
    # Keep the newest few: each open launch (a second EHR tab, say) keeps its own state.
    newest = sorted(pending.items(), key=lambda item: item[1]["created_at"])[-(PENDING_MAX - 1) :]
    pending = dict(newest)
    pending[state] = asdict(
        PendingAuthorization(
            registration=issuer.iss,
            fhir_server=fhir_server,
            ehr_launch=launch is not None,
            code_verifier=pkce.verifier,
            nonce=nonce,
            scope=scope,
            token_endpoint=configuration.token_endpoint,
            issuer=configuration.issuer,
            jwks_uri=configuration.jwks_uri,
            created_at=now,
        )
    )
    session[PENDING_KEY] = pending
    return oauth.authorize_url(
        configuration=configuration,
        registration=registration,
        fhir_server=fhir_server,
        redirect_uri=redirect_uri,
        scope=scope,
        state=state,
        nonce=nonce,
        code_challenge=pkce.challenge,
        launch=launch,
    )


# --- The local account --------------------------------------------------------------------------------


def _clinician_only(user: AbstractBaseUser, *, who: str) -> AbstractBaseUser:
    if not user.is_active:
        raise LaunchFailed(f"The account linked to {who} is deactivated here.")
    if user.is_staff or user.is_superuser or not user.groups.filter(name=CLINICIAN).exists():
        raise LaunchFailed(f"The account linked to {who} is not a clinician's: a launch signs in clinicians only.")
    return user


def _created_username(*, registration: SmartRegistration, practitioner: str) -> str:
    digest = hashlib.sha256(f"{registration.iss}\x00{practitioner}".encode()).hexdigest()
    return f"ehr-{digest[:CREATED_USERNAME_HASH]}"


def _claim(claims: dict[str, Any], name: str, limit: int) -> str:
    value = claims.get(name)
    return value.strip()[:limit] if isinstance(value, str) else ""


@transaction.atomic
def ehr_user_get_or_create(
    *, registration: SmartRegistration, practitioner: str, claims: dict[str, Any]
) -> tuple[AbstractBaseUser, bool]:
    """The local clinician account for this EHR user, by the registration's rule; (user, created).

    `configured`: the registration's `users` names the account; anyone not listed is refused.
    `create`: the account made at this user's first launch (no usable password: it signs in only
    through a launch), made now if there is none."""
    user_model = get_user_model()
    if registration.user_mapping == UserMapping.CONFIGURED:
        username = registration.users.get(practitioner)
        if username is None:
            raise LaunchFailed(
                f"Your EHR account ({practitioner}) is not linked to an account here: ask the administrator to "
                "add it to this EHR's SMART registration."
            )
        user = user_model.objects.filter(username=username).first()
        if user is None:
            raise LaunchFailed(f"The account linked to {practitioner} ({username}) does not exist here.")
        return _clinician_only(user, who=practitioner), False
    link = (
        EhrUserLink.objects.select_related("user").filter(registration=registration.iss, fhir_user=practitioner).first()
    )
    if link is not None:
        return _clinician_only(link.user, who=practitioner), False
    user = user_model(
        username=_created_username(registration=registration, practitioner=practitioner),
        first_name=_claim(claims, "given_name", 150),
        last_name=_claim(claims, "family_name", 150) or _claim(claims, "name", 150),
    )
    user.set_unusable_password()
    try:
        with transaction.atomic():
            user.full_clean()
            user.save()
            link = EhrUserLink(registration=registration.iss, fhir_user=practitioner, user=user)
            link.full_clean(validate_unique=False)  # the unique constraint decides, across processes
            link.save()
    except IntegrityError:
        # The same user's first launch in another tab made it a moment ago.
        link = EhrUserLink.objects.select_related("user").get(registration=registration.iss, fhir_user=practitioner)
        return _clinician_only(link.user, who=practitioner), False
    user.groups.add(Group.objects.get(name=CLINICIAN))
    return user, True


# --- Reading the EHR ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _EhrData:
    patient: Any
    patient_problem: str
    weight: SearchResult | None
    weight_problem: str
    allergies: SearchResult | None
    allergies_problem: str


def _search(*, fhir_server: str, access_token: str, path: str, params: dict[str, str], **kwargs: Any) -> SearchResult:
    first = fhir_get(base_url=fhir_server, path=path, params=params, access_token=access_token)
    return search_pages(first, base_url=fhir_server, access_token=access_token, **kwargs)


def _ehr_read(*, fhir_server: str, access_token: str, patient: str, observation_category: str | None) -> _EhrData:
    """The patient, the latest body weights and the whole allergy list, with the launch's token. A read
    that fails is kept as its reason: it is shown, never taken for "nothing recorded"."""
    read = {"fhir_server": fhir_server, "access_token": access_token}
    try:
        patient_data, patient_problem = (
            fhir_get(base_url=fhir_server, path=f"Patient/{patient}", params={}, access_token=access_token),
            "",
        )
    except FhirUnavailable as error:
        patient_data, patient_problem = None, str(error)
    weight_params = {"patient": patient, "code": LOINC_WEIGHT_QUERY, "_sort": "-date", "_count": WEIGHT_SEARCH_COUNT}
    if observation_category is not None:
        weight_params["category"] = observation_category
    try:
        # Newest first: once a page holds a body weight, later pages are not read.
        weight, weight_problem = (
            _search(
                **read, path="Observation", params=weight_params, enough=lambda rs: any(is_body_weight(r) for r in rs)
            ),
            "",
        )
    except FhirUnavailable as error:
        weight, weight_problem = None, str(error)
    try:
        allergies, allergies_problem = _search(**read, path="AllergyIntolerance", params={"patient": patient}), ""
    except FhirUnavailable as error:
        allergies, allergies_problem = None, str(error)
    return _EhrData(patient_data, patient_problem, weight, weight_problem, allergies, allergies_problem)


def _readings(*, data: _EhrData, issuer: Issuer, tenant: str, now: datetime) -> list[prefill.Reading]:
    today = timezone.localdate(now)
    if data.weight is None:
        weight = unreadable_weight(data.weight_problem)
    elif data.weight.problem:
        weight = unreadable_weight(data.weight.problem)
    else:
        weight = body_weight(data.weight.resources)
    born = birth_date(data.patient)
    readings = [
        prefill.weight_reading(weight=weight, born=born, now=now, max_age_days=settings.CDS_HOOKS_WEIGHT_MAX_AGE_DAYS),
        prefill.age_reading(
            patient=data.patient, problem=data.patient_problem, age=age_years(data.patient, today=today)
        ),
    ]
    allergies = data.allergies
    if allergies is None:
        readings.append(
            prefill.allergy_reading(findings=None, problem=data.allergies_problem, read_at=timezone.localtime(now))
        )
    else:
        findings = anakinra_allergies(allergies.resources, codes=issuer.medication_codes)
        readings.append(
            prefill.allergy_reading(findings=findings, problem=allergies.problem, read_at=timezone.localtime(now))
        )
    slug = issuer.institution_for(tenant)
    names = dict(published_institution_choices())
    if slug is not None and slug in names:
        readings.append(prefill.institution_reading(slug=slug, name=names[slug]))
    return readings


def _wizard_fill(*, session: SessionBase, readings: list[prefill.Reading], new_patient: bool) -> list[prefill.Reading]:
    """The filled-in readings into the wizard (a new patient, or over the same patient's answers when read
    again), through the same checks as a /start/ link; a value the wizard refuses is shown with why and
    left for the clinician."""
    institutions = frozenset(slug for slug, _ in published_institution_choices())
    filled = {r.field: r.answer for r in readings if r.status == prefill.Status.FILLED}
    checked = wizard.prefill_from_query(filled, institutions)
    refused = {problem.split(":", 1)[0]: problem.split(":", 1)[1].strip() for problem in checked.invalid}
    allergy_step = wizard.FIELD_STEPS["ecoli_protein_hypersensitivity"]
    if checked.answers.get(allergy_step.slug, {}).get("ecoli_protein_hypersensitivity") == TRUE:
        # A recorded hypersensitivity is one of the safety conditions: the screen's answer follows from it.
        checked.answers[allergy_step.slug]["safety_screen"] = SOME_APPLY
    answers = wizard.WizardAnswers(session)
    if new_patient:
        answers.reset()
    for step in wizard.STEPS:
        if step.slug in checked.answers:
            answers.save_step(step, {**answers.for_step(step), **checked.answers[step.slug]})
    return [
        prefill.Reading(
            r.field,
            r.question,
            "",
            r.shown,
            f"{r.note} The wizard did not take it: {refused[r.field]}",
            prefill.Status.ASK,
        )
        if r.field in refused
        else r
        for r in readings
    ]


# --- Finishing the launch ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LaunchDone:
    user: AbstractBaseUser
    created: bool
    readings: tuple[prefill.Reading, ...]


def _refusal_audit(*, registration: str, fhir_server: str, ehr_launch: bool, reason: str) -> None:
    # No user is signed in yet: the EHR's registration is the actor.
    audit_record(
        action="smart.launch_refused",
        subject_type=AUDIT_SUBJECT,
        subject_id=registration[:64],
        actor_label=registration[:200],
        reason=reason,
        details={"registration": registration, "fhir_server": fhir_server, "ehr_launch": ehr_launch},
    )


def launch_refused_record(*, issuer: Issuer, fhir_server: str, ehr_launch: bool, reason: str) -> None:
    """Audit a launch from a registered EHR that stopped before the EHR was asked (discovery failed)."""
    _refusal_audit(registration=issuer.iss, fhir_server=fhir_server, ehr_launch=ehr_launch, reason=reason)


def pending_authorization_pop(*, session: SessionBase, state: str) -> PendingAuthorization | None:
    """The authorization this callback answers (each state is used once), if it was started in this
    session within PENDING_MAX_SECONDS."""
    pending = dict(session.get(PENDING_KEY) or {})
    data = pending.pop(state, None) if state else None
    session[PENDING_KEY] = pending
    if not isinstance(data, dict):
        return None
    found = PendingAuthorization.from_session(data)
    return found if found is not None and time.time() - found.created_at < PENDING_MAX_SECONDS else None


def launch_complete(
    *, request: HttpRequest, pending: PendingAuthorization, code: str, error: str, redirect_uri: str
) -> LaunchDone:
    """The callback: the code for a token (with the PKCE verifier), the ID token checked, the EHR user
    signed in as their local account, the EHR's data read into a new patient in the wizard. Audited
    either way; LaunchFailed says why it stopped."""
    try:
        return _launch_complete(request=request, pending=pending, code=code, error=error, redirect_uri=redirect_uri)
    except LaunchFailed as failure:
        _refusal_audit(
            registration=pending.registration,
            fhir_server=pending.fhir_server,
            ehr_launch=pending.ehr_launch,
            reason=str(failure),
        )
        raise


def _launch_complete(
    *, request: HttpRequest, pending: PendingAuthorization, code: str, error: str, redirect_uri: str
) -> LaunchDone:
    issuer = smart_issuer_get(iss=pending.registration)
    if issuer is None or issuer.smart is None or not issuer.smart.serves(pending.fhir_server):
        raise LaunchFailed("This EHR's SMART registration has changed since the launch began: launch again.")
    registration = issuer.smart
    if error:
        said = error if error.replace("_", "").isalpha() else "an error"
        raise LaunchFailed(f"The EHR did not authorize this launch ({said[:60]}).")
    if not code:
        raise LaunchFailed("The EHR sent no authorization code.")
    configuration = oauth.SmartConfiguration(
        authorization_endpoint="",
        token_endpoint=pending.token_endpoint,
        issuer=pending.issuer,
        jwks_uri=pending.jwks_uri,
        capabilities=(),
    )
    token = oauth.token_exchange(
        configuration=configuration,
        registration=registration,
        code=code,
        redirect_uri=redirect_uri,
        code_verifier=pending.code_verifier,
    )
    claims = oauth.id_token_claims(
        configuration=configuration, registration=registration, id_token=token.id_token, nonce=pending.nonce
    )
    practitioner = oauth.practitioner_url(claims=claims, fhir_server=pending.fhir_server)
    user, created = ehr_user_get_or_create(registration=registration, practitioner=practitioner, claims=claims)

    in_progress = not wizard.WizardAnswers(request.session).is_empty
    login(request, user, backend="django.contrib.auth.backends.ModelBackend")
    now = timezone.now()
    category = oauth.VITAL_SIGNS_CATEGORY if "?category=" in pending.scope else None
    data = _ehr_read(
        fhir_server=pending.fhir_server,
        access_token=token.access_token,
        patient=token.patient,
        observation_category=category,
    )
    readings = _wizard_fill(
        session=request.session,
        readings=_readings(data=data, issuer=issuer, tenant=token.tenant, now=now),
        new_patient=True,
    )
    lifetime = (
        min(CONTEXT_MAX_SECONDS, token.expires_in) if token.expires_in and token.expires_in > 0 else CONTEXT_MAX_SECONDS
    )
    expires_at = time.time() + lifetime
    notes = ("The wizard's answers in progress were for another patient: they were cleared.",) if in_progress else ()
    context = PatientContext(
        registration=issuer.iss,
        fhir_server=pending.fhir_server,
        patient=token.patient,
        access_token=token.access_token,
        scope=token.scope,
        expires_at=expires_at,
        readings=tuple(readings),
        banner_name=prefill.patient_name(data.patient) if token.need_patient_banner else "",
        banner_birth_date=(
            born.isoformat() if (born := birth_date(data.patient)) and token.need_patient_banner else ""
        ),
        show_banner=token.need_patient_banner,
        draft_order=draft_order_from_app_context(token.app_context) or "",
        notes=notes,
        tenant=token.tenant,
        observation_category=category or "",
    )
    request.session[SMART_KEY] = {"registration": issuer.iss}
    request.session[PATIENT_KEY] = context.as_session()
    # The whole session ends with the patient context unless the result is stored first (then it is
    # set back to the usual length): an abandoned session holds no patient past this.
    request.session.set_expiry(datetime.fromtimestamp(expires_at, tz=UTC))
    audit_record(
        action="smart.launch",
        subject_type=AUDIT_SUBJECT,
        subject_id=issuer.iss[:64],
        actor=user,
        details={
            "registration": issuer.iss,
            "client_id": registration.client_id,
            "fhir_server": pending.fhir_server,
            "ehr_launch": pending.ehr_launch,
            "fhir_user": practitioner,
            "account_created": created,
        },
    )
    return LaunchDone(user=user, created=created, readings=tuple(readings))


def patient_context_reread(*, session: SessionBase, now: datetime) -> PatientContext | None:
    """Read the EHR again for the launch's patient (a weight just recorded, say), with the launch's token,
    while it lasts; the values read replace those answers in the wizard. None when the context has ended."""
    context = patient_context_get(session=session, now=now.timestamp())
    issuer = smart_issuer_get(iss=context.registration) if context is not None else None
    if context is None or issuer is None:
        patient_context_drop(session=session)
        return None
    data = _ehr_read(
        fhir_server=context.fhir_server,
        access_token=context.access_token,
        patient=context.patient,
        observation_category=context.observation_category or None,
    )
    readings = _wizard_fill(
        session=session, readings=_readings(data=data, issuer=issuer, tenant=context.tenant, now=now), new_patient=False
    )
    refreshed = replace(context, readings=tuple(readings), notes=())
    session[PATIENT_KEY] = refreshed.as_session()
    return refreshed


def patient_context_drop(*, session: SessionBase) -> bool:
    """Forget the launch's patient (id, tokens, what was read); the session goes back to its usual length.
    True when there was one."""
    if PATIENT_KEY not in session:
        return False
    del session[PATIENT_KEY]
    session.set_expiry(None)
    return True
