"""Writes to protocol data. Views, admin actions and the seed loader call these; nothing else writes.

The governance workflow, each step one transaction with an audit event:

    published vN --draft_create--> draft vN+1 --submit--> submitted --approve--> published vN+1
                                      ^                      |                  (vN retired)
                                      +-------reject---------+

Two-person rule: whoever wrote any of a version's content (test patients included) cannot approve
it. A version is published only when every one of its test patients passes on it, and only in the
revision the approver looked at.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import date, datetime
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.mail import EmailMessage, mailers
from django.db import transaction
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone

from accounts.selectors import login_locked_until, users_with_permission
from accounts.services import login_failure_record
from audit.services import audit_record
from evidence.models import Reference
from protocols.change_checks import ChangedAmount
from protocols.models import (
    OPEN_STATUSES,
    AmountConfirmation,
    DosingStep,
    Protocol,
    ProtocolCitation,
    ProtocolVersion,
    StepCitation,
    VersionStatus,
    user_display,
)
from protocols.patient_checks import CheckOutcome
from protocols.selectors.history import (
    ChangeReview,
    protocol_version_change_review,
    protocol_version_editor_ids,
    protocol_version_last_change,
)
from protocols.selectors.reads import protocol_test_patients_check

logger = logging.getLogger(__name__)

SUBJECT = "protocol_version"
APPROVE_PERMISSION = "protocols.approve_protocolversion"
MAX_REVIEW_YEARS = 3


class GovernanceError(Exception):
    """A workflow step refused, with a message for the pharmacist."""


class AlreadyPublished(GovernanceError, ValueError):
    """Publishing a version that is already published or retired (e.g. a second, concurrent approval)."""


class StaleRevision(GovernanceError):
    """The version changed after the acting pharmacist loaded it."""


class SignatureRefused(GovernanceError):
    """Approval refused: the approver's password, re-entered as a signature, was wrong (or is paused)."""


class FailingTestPatients(GovernanceError):
    """Publication (or submission) refused while a test patient fails."""

    def __init__(self, message: str, outcomes: list[CheckOutcome]) -> None:
        super().__init__(message)
        self.outcomes = outcomes


def years_later(*, day: date, years: int) -> date:
    """The same day `years` later (28 February for 29 February)."""
    try:
        return day.replace(year=day.year + years)
    except ValueError:  # 29 February
        return day.replace(year=day.year + years, day=28)


def _version_audit(
    *,
    action: str,
    version: ProtocolVersion,
    actor: AbstractBaseUser,
    reason: str = "",
    subject_id: int | None = None,
    **details: Any,
) -> None:
    """One governance audit event (`protocol_version.<action>`), naming the protocol and version number."""
    audit_record(
        action=f"protocol_version.{action}",
        subject_type=SUBJECT,
        subject_id=subject_id if subject_id is not None else version.pk,
        actor=actor,
        reason=reason,
        details={
            "protocol": version.protocol.institution.slug,
            "version": version.number,
            "subject": f"{version.protocol} v{version.number}",
            **details,
        },
    )


def _protocol_locked(*, protocol_id: int) -> Protocol:
    try:
        return Protocol.objects.select_for_update().get(pk=protocol_id)
    except Protocol.DoesNotExist as error:
        raise GovernanceError("That protocol no longer exists.") from error


def _locked(version: ProtocolVersion) -> ProtocolVersion:
    """The version, re-read under lock. Every workflow step locks its protocol first, then the
    version (the same order everywhere, so two steps can wait on each other but never deadlock)."""
    protocol_id = ProtocolVersion.objects.filter(pk=version.pk).values_list("protocol_id", flat=True).first()
    if protocol_id is None:
        raise GovernanceError("That protocol version no longer exists (a draft may have been deleted).")
    _protocol_locked(protocol_id=protocol_id)
    return (
        ProtocolVersion.objects.select_for_update(of=("self",))
        .select_related("protocol__institution")
        .get(pk=version.pk)
    )


def stale_revision_message(*, version_id: int, revision: int) -> str:
    change = protocol_version_last_change(version_id=version_id)
    who = f" by {change.who} at {timezone.localtime(change.when):%Y-%m-%d %H:%M:%S}" if change else ""
    return (
        f"This version was changed{who} (now revision {revision}) after you opened it. "
        "Nothing was saved: reload the page to see the current version, then make your change again."
    )


def _check_revision(version: ProtocolVersion, expected_revision: int | None) -> None:
    if expected_revision is not None and version.edit_revision != expected_revision:
        raise StaleRevision(stale_revision_message(version_id=version.pk, revision=version.edit_revision))


def _check_status(version: ProtocolVersion, wanted: VersionStatus, doing: str) -> None:
    if version.status != wanted:
        raise GovernanceError(
            f"Cannot {doing} {version}: it is {version.get_status_display().lower()}, not {wanted.label.lower()}."
        )


def _check_test_patients(version: ProtocolVersion, doing: str) -> list[CheckOutcome]:
    outcomes = protocol_test_patients_check(version_id=version.pk)
    if not outcomes:
        raise FailingTestPatients(
            f"Cannot {doing}: v{version.number} of {version.protocol} has no test patients. "
            "Add at least one, with its expected answer.",
            outcomes,
        )
    failing = [o for o in outcomes if not o.passed]
    if failing:
        details = "; ".join(f"{o.expectation.label}: {', '.join(o.problems)}" for o in failing)
        raise FailingTestPatients(
            f"Cannot {doing}: {len(failing)} of {len(outcomes)} test patients fail on this version. {details}",
            failing,
        )
    return outcomes


def _check_content(version: ProtocolVersion) -> None:
    missing = [
        what
        for what, manager in (
            ("an indication rule", version.rules),
            ("a dosing step", version.steps),
            ("a citation", version.citations),
        )
        if not manager.exists()
    ]
    if missing:
        raise GovernanceError(f"Cannot submit {version}: it needs at least {', '.join(missing)}.")


def _save(instance, *, actor: AbstractBaseUser | None, reason: str = "") -> None:
    instance.full_clean()
    instance._history_user = actor
    if reason:
        instance._change_reason = reason
    instance.save()


@transaction.atomic
def protocol_version_publish(
    *,
    version: ProtocolVersion,
    approved_by: AbstractBaseUser | None,
    approval_source: str = "",
    now: datetime | None = None,
) -> ProtocolVersion:
    """Publish `version` and retire whatever was published before it, in one transaction.

    Callers check who may approve (two-person rule) before calling; this enforces only what
    must always hold: a version is published once, and one version per protocol is live.
    """
    if approved_by is None and not approval_source:
        raise ValueError("A version is published by an approving user or a named approval source.")
    now = now or timezone.now()
    # The protocol lock makes two concurrent publishes wait: the second sees the first's result.
    current = _locked(version)
    if current.status in (VersionStatus.PUBLISHED, VersionStatus.RETIRED):
        raise AlreadyPublished(f"{current} has already been published: nothing was changed.")
    retiring = list(ProtocolVersion.objects.filter(protocol_id=version.protocol_id, status=VersionStatus.PUBLISHED))
    ProtocolVersion.objects.filter(pk__in=[v.pk for v in retiring]).update(status=VersionStatus.RETIRED, retired_at=now)
    # The bulk update writes no history row by itself: record the retirement explicitly.
    for old in retiring:
        old.status, old.retired_at = VersionStatus.RETIRED, now
    ProtocolVersion.history.bulk_history_create(
        retiring,
        update=True,
        default_user=approved_by,
        default_change_reason=f"retired: version {version.number} published",
        default_date=now,
    )
    version.status = VersionStatus.PUBLISHED
    version.published_at = now
    version.approved_by = approved_by
    version.approval_source = approval_source
    version._history_user = approved_by
    version.save()
    return version


def _copy_rows(source: ProtocolVersion, draft: ProtocolVersion, actor: AbstractBaseUser) -> None:
    for citation in source.citations.all():
        _save(
            ProtocolCitation(
                version=draft, reference_id=citation.reference_id, locator=citation.locator, position=citation.position
            ),
            actor=actor,
        )
    for rule in source.rules.all():
        rule.pk = rule.id = None
        rule._state.adding = True
        rule.version = draft
        _save(rule, actor=actor)
    for step in source.steps.all():
        cited = list(step.citations.all())
        step.pk = step.id = None
        step._state.adding = True
        step.version = draft
        _save(step, actor=actor)
        for citation in cited:
            _save(StepCitation(step=step, reference_id=citation.reference_id, position=citation.position), actor=actor)
    for test_patient in source.test_patients.all():
        test_patient.pk = test_patient.id = None
        test_patient._state.adding = True
        test_patient.version = draft
        _save(test_patient, actor=actor)


@transaction.atomic
def protocol_version_draft_create(*, protocol: Protocol, author: AbstractBaseUser, reason: str = "") -> ProtocolVersion:
    """A new draft: a full copy of the published version (fields, rules, steps, citations, test patients).
    The author's reason for starting it becomes the draft's change reason, to be completed before submitting."""
    # Under the protocol lock, a second pharmacist starting at the same moment waits, then sees this draft.
    _protocol_locked(protocol_id=protocol.pk)
    open_version = ProtocolVersion.objects.filter(protocol=protocol, status__in=OPEN_STATUSES).first()
    if open_version is not None:
        raise GovernanceError(
            f"{protocol} already has {open_version} (authored by "
            f"{user_display(open_version.authored_by) or 'the data file loader'}): "
            "continue that one, or delete it first."
        )
    source = (
        ProtocolVersion.objects.published()
        .filter(protocol=protocol)
        .prefetch_related("citations", "rules", "steps__citations", "test_patients")
        .first()
    )
    if source is None:
        raise GovernanceError(f"{protocol} has no published version to copy: add its first version instead.")
    latest_number = protocol.versions.order_by("-number").values_list("number", flat=True).first() or 0
    draft = ProtocolVersion(
        protocol=protocol,
        number=latest_number + 1,
        status=VersionStatus.DRAFT,
        **{name: getattr(source, name) for name in ProtocolVersion.content_attnames()},
        authored_by=author,
        based_on=source,
        change_reason=reason.strip(),
    )
    reason = reason.strip() or f"Draft started from version {source.number}."
    _save(draft, actor=author, reason=reason)
    _copy_rows(source, draft, author)
    _version_audit(
        action="draft_started", version=draft, actor=author, reason=reason, copied_from_version=source.number
    )
    draft.refresh_from_db()
    return draft


@transaction.atomic
def protocol_version_first_create(*, version: ProtocolVersion, author: AbstractBaseUser) -> ProtocolVersion:
    """Save a new protocol's first version (its content filled in by the caller) as a draft."""
    _protocol_locked(protocol_id=version.protocol_id)
    if ProtocolVersion.objects.filter(protocol_id=version.protocol_id).exists():
        raise GovernanceError(f"{version.protocol} already has a version: start a draft from it instead.")
    version.number = 1
    version.status = VersionStatus.DRAFT
    version.authored_by = author
    reason = "First version of a new protocol."
    _save(version, actor=author, reason=reason)
    _version_audit(action="draft_started", version=version, actor=author, reason=reason)
    return version


def _amount_details(review: ChangeReview) -> dict[str, Any]:
    """The changed amounts as the audit keeps them: flagged ones with their confirmations, uncovered ones."""
    return {
        "amounts_above_letter": [
            {
                "step": a.amount.step_name,
                "amount": a.amount.label,
                "value": a.amount.new,
                "per_day": a.amount.per_day_text,
                "threshold": a.amount.threshold_text,
                "confirmed_by": user_display(a.confirmation.confirmed_by) if a.confirmation else "",
                "reason": a.confirmation.reason if a.confirmation else "",
            }
            for a in review.flagged
        ],
        "amounts_no_test_patient_exercises": [f"{a.amount.step_name}: {a.amount.label}" for a in review.uncovered],
    }


@transaction.atomic
def protocol_version_submit(
    *,
    version: ProtocolVersion,
    submitted_by: AbstractBaseUser,
    change_reason: str,
    expected_revision: int | None,
    coverage_note: str = "",
    request_base_url: str = "",
) -> ProtocolVersion:
    """Send a draft for approval, with what changed and why. Its test patients must already pass, every
    changed amount above what the letter reports must be confirmed, and a changed amount that no test
    patient's answer depends on needs a coverage note (why not). The other pharmacists are told by email,
    with a link on SITE_URL when set, else on `request_base_url` (the submitting request's scheme://host)."""
    version = _locked(version)
    _check_status(version, VersionStatus.DRAFT, "submit")
    _check_revision(version, expected_revision)
    change_reason = change_reason.strip()
    coverage_note = coverage_note.strip()
    if not change_reason:
        raise GovernanceError("Say what changed and why (the change reason) before submitting.")
    _check_content(version)
    _check_test_patients(version, "submit for approval")
    review = protocol_version_change_review(version_id=version.pk)
    if review.unconfirmed:
        listed = "; ".join(f"{a.amount.step_name}: {a.amount.label} {a.amount.new}" for a in review.unconfirmed)
        raise GovernanceError(
            f"Cannot submit: {len(review.unconfirmed)} changed amount(s) above what the letter reports are not "
            f"confirmed ({listed}). Correct them, or confirm each with a reason on the draft's page."
        )
    if review.uncovered and not coverage_note:
        listed = "; ".join(f"{a.amount.step_name}: {a.amount.label}" for a in review.uncovered)
        raise GovernanceError(
            f"No test patient's answer changes with {listed}. Add a test patient that exercises each, "
            "or say in the coverage note why not."
        )
    version.status = VersionStatus.SUBMITTED
    version.submitted_by = submitted_by
    version.submitted_at = timezone.now()
    version.change_reason = change_reason
    version.coverage_note = coverage_note if review.uncovered else ""
    _save(version, actor=submitted_by, reason=f"submitted for approval: {change_reason}")
    reviewers = _reviewers_to_notify(version)
    _version_audit(
        action="submitted",
        version=version,
        actor=submitted_by,
        reason=change_reason,
        coverage_note=version.coverage_note,
        notified=[user_display(u) for u in reviewers],
        **_amount_details(review),
    )
    transaction.on_commit(
        lambda: _notify_reviewers(
            version=version, reviewers=reviewers, review=review, request_base_url=request_base_url
        )
    )
    return version


def _reviewers_to_notify(version: ProtocolVersion) -> list[AbstractBaseUser]:
    """Every other pharmacist who may approve this version (not its editors), with an email address."""
    editors = protocol_version_editor_ids(version=version)
    return [
        user
        for user in users_with_permission(permission=APPROVE_PERMISSION).exclude(email="").order_by("last_name")
        if user.pk not in editors
    ]


def _notify_reviewers(
    *, version: ProtocolVersion, reviewers: list[AbstractBaseUser], review: ChangeReview, request_base_url: str
) -> None:
    """One email per reviewer, after the submission is committed. A mail failure never undoes the
    submission: it is logged and audited, and the version is on every reviewer's admin worklist anyway.
    The link is absolute (a mail client has no page to resolve a path against): SITE_URL wins when set."""
    if not reviewers:
        return
    path = reverse("admin:protocols_protocolversion_approve", args=[version.pk])
    link = f"{settings.SITE_URL or request_base_url.rstrip('/')}{path}"
    body = render_to_string(
        "admin/protocols/email/submitted.txt",
        {"version": version, "submitter": user_display(version.submitted_by), "review": review, "link": link},
    )
    subject = f"Awaiting your approval: {version.protocol} v{version.number}"
    messages = [EmailMessage(subject=subject, body=body, to=[user.email]) for user in reviewers]
    try:
        mailers.default.send_messages(messages)
    except Exception as error:  # SMTP down or refused: the submission stands
        logger.exception("Could not email the reviewers of %s", version)
        _version_audit(
            action="notification_failed",
            version=version,
            actor=version.submitted_by,
            reason=f"{type(error).__name__}: {error}",
            recipients=[user_display(u) for u in reviewers],
        )


def _signature_check(*, version: ProtocolVersion, user: AbstractBaseUser, password: str) -> None:
    """Approval is signed by re-entering one's password. A wrong password is audited and counts towards the
    log-in throttle (so a session left open cannot be used to guess it)."""
    username = user.get_username()
    if login_locked_until(username=username) is not None:
        raise SignatureRefused(
            "Too many wrong passwords for this account: approval (and log-in) is paused for a while. "
            "Nothing was approved."
        )
    if user.check_password(password):
        return
    with transaction.atomic():
        login_failure_record(username=username)
        _version_audit(action="signature_refused", version=version, actor=user, reason="Wrong password at approval.")
    raise SignatureRefused(
        "That is not your password. Approval is signed with your own password; nothing was approved."
    )


def protocol_version_approve(
    *,
    version: ProtocolVersion,
    approved_by: AbstractBaseUser,
    password: str,
    approval_note: str,
    next_review: date,
    expected_revision: int | None,
    today: date | None = None,
) -> ProtocolVersion:
    """A second pharmacist approves a submitted version, signing with their password; it is published at
    once (the old one retired)."""
    _signature_check(version=version, user=approved_by, password=password)
    return _approve(
        version=version,
        approved_by=approved_by,
        approval_note=approval_note,
        next_review=next_review,
        expected_revision=expected_revision,
        today=today,
    )


@transaction.atomic
def _approve(
    *,
    version: ProtocolVersion,
    approved_by: AbstractBaseUser,
    approval_note: str,
    next_review: date,
    expected_revision: int | None,
    today: date | None,
) -> ProtocolVersion:
    version = _locked(version)
    _check_status(version, VersionStatus.SUBMITTED, "approve")
    _check_revision(version, expected_revision)
    if not approved_by.has_perm(APPROVE_PERMISSION):
        raise GovernanceError("Only a pharmacist with approval rights can approve a protocol version.")
    if approved_by.pk in protocol_version_editor_ids(version=version):
        raise GovernanceError(
            "You wrote or edited this version, so you cannot approve it: a different pharmacist must check it."
        )
    approval_note = approval_note.strip()
    if not approval_note:
        raise GovernanceError("Give an approval note (what you checked).")
    today = today or timezone.localdate()
    latest_review = years_later(day=today, years=MAX_REVIEW_YEARS)
    if not today < next_review <= latest_review:
        raise GovernanceError(
            f"The next review date must be after today and no later than {latest_review:%Y-%m-%d} "
            f"({MAX_REVIEW_YEARS} years)."
        )
    outcomes = _check_test_patients(version, "publish")
    review = protocol_version_change_review(version_id=version.pk)
    retired = ProtocolVersion.objects.published().filter(protocol_id=version.protocol_id).first()
    version.next_review = next_review
    version._change_reason = f"approved and published: {approval_note}"
    protocol_version_publish(version=version, approved_by=approved_by)
    details = {
        "next_review": next_review.isoformat(),
        "test_patients_passed": len(outcomes),
        "retired_version": retired.number if retired else None,
    }
    _version_audit(
        action="approved",
        version=version,
        actor=approved_by,
        reason=approval_note,
        signature="password re-entered at approval",
        **details,
        **_amount_details(review),
    )
    _version_audit(action="published", version=version, actor=approved_by, reason=version.change_reason, **details)
    return version


@transaction.atomic
def protocol_version_reject(
    *, version: ProtocolVersion, rejected_by: AbstractBaseUser, reason: str, expected_revision: int | None
) -> ProtocolVersion:
    """Send a submitted version back to draft, saying why. Its submitter may do this to withdraw it."""
    version = _locked(version)
    _check_status(version, VersionStatus.SUBMITTED, "return")
    _check_revision(version, expected_revision)
    if not rejected_by.has_perm(APPROVE_PERMISSION):
        raise GovernanceError("Only a pharmacist with approval rights can return a version to draft.")
    reason = reason.strip()
    if not reason:
        raise GovernanceError("Say why the version is returned to draft.")
    version.status = VersionStatus.DRAFT
    version.submitted_by = None
    version.submitted_at = None
    _save(version, actor=rejected_by, reason=f"returned to draft: {reason}")
    _version_audit(action="rejected", version=version, actor=rejected_by, reason=reason)
    return version


@transaction.atomic
def protocol_version_draft_delete(*, version: ProtocolVersion, deleted_by: AbstractBaseUser, reason: str) -> None:
    """Delete a draft (with its rows), saying why; only drafts can go, and the deletion is audited."""
    reason = reason.strip()
    if not reason:
        raise GovernanceError("Say why the draft is deleted (kept in the audit).")
    version = _locked(version)
    _check_status(version, VersionStatus.DRAFT, "delete")
    version_id = version.pk
    version._history_user = deleted_by
    version._change_reason = f"draft deleted: {reason}"
    version.delete()  # the instance keeps its number and protocol for the audit event
    _version_audit(action="draft_deleted", version=version, actor=deleted_by, reason=reason, subject_id=version_id)


@transaction.atomic
def dosing_step_citations_set(*, step: DosingStep, references: Iterable[Reference], actor: AbstractBaseUser) -> None:
    """Make a (draft) step cite exactly these references, in this order."""
    wanted = list(dict.fromkeys(references))
    existing = {c.reference_id: c for c in step.citations.all()}
    for citation in existing.values():
        if citation.reference_id not in {r.pk for r in wanted}:
            citation._history_user = actor
            citation.delete()
    for position, reference in enumerate(wanted):
        citation = existing.get(reference.pk)
        if citation is None:
            _save(StepCitation(step=step, reference=reference, position=position), actor=actor)
        elif citation.position != position:
            citation.position = position
            _save(citation, actor=actor)


@transaction.atomic
def dosing_step_amounts_confirm(
    *, step: DosingStep, amounts: Iterable[ChangedAmount], reason: str, actor: AbstractBaseUser
) -> list[AmountConfirmation]:
    """The author confirms, with a reason, amounts of a draft's step above what the letter reports."""
    reason = reason.strip()
    if not reason:
        raise GovernanceError("Give the reason for an amount above what the letter reports.")
    version = _locked(step.version)
    _check_status(version, VersionStatus.DRAFT, "confirm an amount of")
    confirmations = []
    for amount in amounts:
        confirmation = AmountConfirmation(
            version=version,
            step_name=amount.step_name,
            field=amount.field,
            amount_key=amount.key,
            amount_text=f"{amount.per_day_working}, above {amount.threshold_text}",
            reason=reason,
            confirmed_by=actor,
        )
        confirmation.full_clean()
        confirmation.save()
        confirmations.append(confirmation)
        _version_audit(
            action="amount_confirmed",
            version=version,
            actor=actor,
            reason=reason,
            step=amount.step_name,
            amount=amount.label,
            value=amount.new,
            per_day=amount.per_day_text,
            threshold=amount.threshold_text,
        )
    return confirmations
