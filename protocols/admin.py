"""Protocol governance in the Django admin: drafts edited inline, two-person approval, test
patients, previews, history and diffs. Thin: every decision is in protocols.services/selectors.

Who may do what (groups in accounts.roles): pharmacists edit drafts and test patients and approve
other pharmacists' versions; published and retired versions are read-only for everyone, and only
drafts can be deleted (singly or with the bulk action).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html

from anakinra_cds.history_admin import HistoryAdmin
from audit.selectors import audit_events_for
from engine.data import DoseRange
from protocols.forms import (
    ApproveForm,
    DeleteDraftForm,
    DosingStepForm,
    IndicationRuleForm,
    ProtocolTestPatientForm,
    ProtocolVersionForm,
    RejectForm,
    StartDraftForm,
    SubmitForm,
)
from protocols.models import (
    DosingStep,
    IndicationRule,
    Institution,
    Protocol,
    ProtocolCitation,
    ProtocolTestPatient,
    ProtocolVersion,
    VersionStatus,
)
from protocols.patient_checks import patient_inputs_text, range_text
from protocols.selectors.governance import protocol_version_change_record
from protocols.selectors.history import (
    protocol_version_change_review,
    protocol_version_diff,
    protocol_version_editor_ids,
    protocol_version_preview,
    protocol_version_row_history,
)
from protocols.selectors.reads import (
    ReviewState,
    institution_has_versions,
    protocol_test_patient_runs,
    protocol_version_default_comparison,
    protocols_with_governance,
    review_state,
    test_patient_outcomes,
    version_governance,
)
from protocols.services import (
    APPROVE_PERMISSION,
    SUBJECT,
    GovernanceError,
    SignatureRefused,
    dosing_step_amounts_confirm,
    dosing_step_citations_set,
    protocol_version_approve,
    protocol_version_draft_create,
    protocol_version_draft_delete,
    protocol_version_first_create,
    protocol_version_reject,
    protocol_version_submit,
)

admin.site.site_header = "Anakinra CDS administration"
admin.site.site_title = "Anakinra CDS admin"
admin.site.index_title = "Protocols, evidence and accounts"


def review_flag(next_review) -> str:
    state = review_state(next_review=next_review, today=timezone.localdate())
    if state == ReviewState.OVERDUE:
        return format_html('<span class="gov-flag gov-flag-overdue">Review overdue (due {})</span>', next_review)
    if state == ReviewState.NOT_SCHEDULED:
        return format_html('<span class="gov-flag gov-flag-unscheduled">{}</span>', "No review date")
    return format_html('<span class="gov-flag gov-flag-current">Due {}</span>', next_review)


# --- Institutions and protocols ----------------------------------------------------------------------


@admin.register(Institution)
class InstitutionAdmin(HistoryAdmin):
    list_display = ("name", "slug", "short_name", "location")
    search_fields = ("name", "slug")

    def get_readonly_fields(self, request, obj=None):
        # The slug is a public API identifier: never changed once its protocol has been published.
        if obj is not None and institution_has_versions(institution_id=obj.pk):
            return ("slug",)
        return ()


class ReviewFilter(admin.SimpleListFilter):
    title = "review"
    parameter_name = "review"

    def lookups(self, request, model_admin):
        return [("overdue", "Review overdue"), ("unscheduled", "No review date"), ("current", "Review date ahead")]

    def queryset(self, request, queryset):
        today = timezone.localdate()
        published = {"versions__status": VersionStatus.PUBLISHED}
        if self.value() == "overdue":
            return queryset.filter(**published, versions__next_review__lt=today)
        if self.value() == "unscheduled":
            return queryset.filter(**published, versions__next_review__isnull=True)
        if self.value() == "current":
            return queryset.filter(**published, versions__next_review__gte=today)
        return queryset


@admin.register(Protocol)
class ProtocolAdmin(HistoryAdmin):
    list_display = (
        "title",
        "institution_slug",
        "published_version",
        "authored_by",
        "checked_by",
        "published_on",
        "review",
        "open_version",
    )
    list_filter = (ReviewFilter,)
    search_fields = ("title", "institution__name", "institution__slug")
    fields = ("institution", "title")
    actions = ["start_drafts"]

    def get_queryset(self, request):
        return protocols_with_governance()

    def get_readonly_fields(self, request, obj=None):
        return ("institution",) if obj is not None else ()

    @staticmethod
    def _published(obj: Protocol) -> ProtocolVersion | None:
        return obj.published_versions[0] if getattr(obj, "published_versions", None) else None

    @admin.display(description="slug", ordering="institution__slug")
    def institution_slug(self, obj):
        return obj.institution.slug

    @admin.display(description="published")
    def published_version(self, obj):
        version = self._published(obj)
        return f"v{version.number}" if version else "none"

    @admin.display(description="authored by")
    def authored_by(self, obj):
        version = self._published(obj)
        return version_governance(version=version).authored_by if version else ""

    @admin.display(description="checked by")
    def checked_by(self, obj):
        version = self._published(obj)
        return version.approver_display if version else ""

    @admin.display(description="published on")
    def published_on(self, obj):
        version = self._published(obj)
        return version.published_at if version else None

    @admin.display(description="next review")
    def review(self, obj):
        version = self._published(obj)
        return review_flag(version.next_review) if version else ""

    @admin.display(description="being changed")
    def open_version(self, obj):
        if not obj.open_versions:
            return ""
        version = obj.open_versions[0]
        url = reverse("admin:protocols_protocolversion_change", args=[version.pk])
        return format_html('<a href="{}">v{} ({})</a>', url, version.number, version.get_status_display().lower())

    def get_urls(self):
        return [
            path(
                "<path:object_id>/start-draft/",
                self.admin_site.admin_view(self.start_draft_view),
                name="protocols_protocol_start_draft",
            ),
            *super().get_urls(),
        ]

    def change_view(self, request, object_id, form_url="", extra_context=None):
        protocol = self.get_object(request, object_id)
        extra_context = extra_context or {}
        if protocol is not None:
            published = self._published(protocol)
            extra_context |= {
                "governance": version_governance(version=published) if published else None,
                "open_version": protocol.open_versions[0] if protocol.open_versions else None,
                "can_start_draft": self._can_start_draft(request, protocol),
                "test_patient_count": published.test_patients.count() if published else 0,
            }
        return super().change_view(request, object_id, form_url, extra_context)

    def _can_start_draft(self, request: HttpRequest, protocol: Protocol) -> bool:
        return (
            request.user.has_perm("protocols.add_protocolversion")
            and bool(protocol.published_versions)
            and not protocol.open_versions
        )

    def start_draft_view(self, request, object_id):
        protocol = self.get_object(request, object_id)
        if protocol is None:
            raise Http404("No such protocol.")
        if not request.user.has_perm("protocols.add_protocolversion"):
            raise PermissionDenied
        form = StartDraftForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            try:
                draft = protocol_version_draft_create(
                    protocol=protocol, author=request.user, reason=form.cleaned_data["reason"]
                )
            except GovernanceError as error:
                form.add_error(None, str(error))
            else:
                messages.success(request, f"Draft v{draft.number} started as a copy of the published version.")
                return HttpResponseRedirect(reverse("admin:protocols_protocolversion_change", args=[draft.pk]))
        context = {
            **self.admin_site.each_context(request),
            "title": f"Start a new draft of {protocol}",
            "opts": self.opts,
            "original": protocol,
            "form": form,
            "action": "start_draft",
            "governance": version_governance(version=published) if (published := self._published(protocol)) else None,
            "open_version": protocol.open_versions[0] if protocol.open_versions else None,
        }
        return TemplateResponse(request, "admin/protocols/governance_action.html", context)

    @admin.action(description="Start a new draft from the published version", permissions=["start_draft"])
    def start_drafts(self, request, queryset):
        for protocol in queryset:
            try:
                draft = protocol_version_draft_create(protocol=protocol, author=request.user)
            except GovernanceError as error:
                self.message_user(request, str(error), messages.ERROR)
            else:
                self.message_user(request, f"{protocol}: draft v{draft.number} started.", messages.SUCCESS)

    def has_start_draft_permission(self, request) -> bool:
        return request.user.has_perm("protocols.add_protocolversion")


# --- Versions, with their rules, steps and citations inline ---------------------------------------


class DraftOnlyInline:
    """Rows of a version are edited only while it is a draft."""

    @staticmethod
    def _draft(obj) -> bool:
        return obj is None or obj.status == VersionStatus.DRAFT

    def has_add_permission(self, request, obj=None):
        return super().has_add_permission(request, obj) and self._draft(obj)

    def has_change_permission(self, request, obj=None):
        return super().has_change_permission(request, obj) and self._draft(obj)

    def has_delete_permission(self, request, obj=None):
        return super().has_delete_permission(request, obj) and self._draft(obj)


class ProtocolCitationInline(DraftOnlyInline, admin.StackedInline):
    # Stacked, not tabular: a tabular row's inputs have no labels of their own (screen readers, axe).
    model = ProtocolCitation
    fields = ("reference", "locator", "position")
    extra = 0
    verbose_name = "citation (on every recommendation from this version)"
    verbose_name_plural = "citations (on every recommendation from this version)"


class IndicationRuleInline(DraftOnlyInline, admin.StackedInline):
    model = IndicationRule
    form = IndicationRuleForm
    extra = 0
    fieldsets = [
        (
            None,
            {
                "fields": (
                    "position",
                    ("applies_to_crs", "applies_to_icans", "applies_to_carhlh"),
                    ("min_grade", "max_grade"),
                )
            },
        ),
        ("Prerequisites", {"fields": ("min_prior_tocilizumab_doses", "requires_steroids")}),
        (
            "Result",
            {
                "fields": (
                    "result_status",
                    "summary",
                    "first_line_if_isolated_late_onset",
                    "first_line_summary",
                    ("repeat_tocilizumab_from_doses", "repeat_tocilizumab_note"),
                )
            },
        ),
    ]


class DosingStepInline(DraftOnlyInline, admin.StackedInline):
    model = DosingStep
    form = DosingStepForm
    extra = 0
    fieldsets = [
        (
            "Which patients",
            {
                "fields": (
                    ("position", "kind", "name"),
                    ("applies_to_crs", "applies_to_icans", "applies_to_carhlh"),
                    ("min_grade", "max_grade"),
                )
            },
        ),
        (
            "Dose",
            {
                "fields": (
                    "dose_basis",
                    ("amount_low", "amount_high"),
                    ("interval_hours", "interval_is_maximum"),
                    ("route_iv", "route_sc"),
                )
            },
        ),
        (
            "Caps, escalation and rounding",
            {
                "fields": (
                    ("max_single_dose_mg", "max_daily_dose_mg"),
                    ("escalation_ceiling_amount", "escalation_ceiling_basis"),
                    ("rounding_increment_mg", "rounding_tolerance_percent"),
                )
            },
        ),
        ("Duration, taper and notes", {"fields": ("duration_text", "taper_text", "notes", "cited_references")}),
        ("Unusual amounts", {"fields": ("unusual_amount_reason",)}),
    ]

    def get_fieldsets(self, request, obj=None):
        # The confirmation is asked of authors only (a read-only version has nothing to confirm).
        if obj is not None and not self.has_change_permission(request, obj):
            return self.fieldsets[:-1]
        return self.fieldsets

    @admin.display(description="step citations")
    def cited_references(self, obj):
        # Read-only display of the same field (published versions, or users who cannot edit).
        return "; ".join(c.reference.short_label for c in obj.citations.select_related("reference")) or "-"


@dataclass(frozen=True, slots=True)
class _GovernanceStep:
    """One workflow step on its page: the form, what a valid POST does, and what the page shows."""

    form: forms.Form
    perform: Callable[[dict], None]
    done_message: str
    title: str
    page_context: Callable[[], dict]


@admin.register(ProtocolVersion)
class ProtocolVersionAdmin(HistoryAdmin):
    form = ProtocolVersionForm
    inlines = [ProtocolCitationInline, IndicationRuleInline, DosingStepInline]
    list_display = (
        "__str__",
        "status",
        "authored_by",
        "submitted_by",
        "checked_by",
        "published_at",
        "next_review_flag",
    )
    list_filter = ("status", "protocol")
    list_select_related = ("protocol__institution", "authored_by", "submitted_by", "approved_by")
    # No bulk delete: a draft is deleted on its own page, with a reason for the audit.
    actions = None
    object_history_template = "admin/protocols/protocolversion/object_history.html"
    governance_fields = (
        "number",
        "status",
        "authored_by",
        "submitted_by",
        "submitted_at",
        "checked_by",
        "published_at",
        "retired_at",
        "next_review",
        "change_reason",
        "based_on",
        "edit_revision",
    )
    content_fields = ProtocolVersion.TEXT_FIELDS
    threshold_fields = ProtocolVersion.COMPARISON_FIELDS

    @admin.display(description="checked by")
    def checked_by(self, obj):
        return obj.approver_display

    @admin.display(description="next review")
    def next_review_flag(self, obj):
        return review_flag(obj.next_review) if obj.status == VersionStatus.PUBLISHED else ""

    def get_fieldsets(self, request, obj=None):
        comparison = (
            "Cross-center comparison amounts and the product label",
            {
                "fields": self.threshold_fields,
                "description": (
                    "above_reported_maximum and above_usual_daily_cap compare every dose with these amounts "
                    "(clinical.md section 4); the label is cited wherever a label-derived rule is used."
                ),
            },
        )
        if obj is None:
            return [(None, {"fields": ("protocol", *self.content_fields)}), comparison]
        content = list(self.content_fields)
        if self.has_change_permission(request, obj):
            content.append("loaded_revision")
        return [
            (None, {"fields": ("protocol",)}),
            ("Content", {"fields": content}),
            comparison,
            ("Governance record", {"fields": self.governance_fields, "classes": ("collapse",)}),
        ]

    def get_readonly_fields(self, request, obj=None):
        return () if obj is None else ("protocol", *self.governance_fields)

    def has_change_permission(self, request, obj=None):
        return super().has_change_permission(request, obj) and (obj is None or obj.status == VersionStatus.DRAFT)

    def has_delete_permission(self, request, obj=None):
        return super().has_delete_permission(request, obj) and (obj is None or obj.status == VersionStatus.DRAFT)

    def delete_view(self, request, object_id, extra_context=None):
        version = self._version(request, object_id)
        if not self.has_delete_permission(request, version):
            raise PermissionDenied
        form = DeleteDraftForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            try:
                protocol_version_draft_delete(
                    version=version, deleted_by=request.user, reason=form.cleaned_data["reason"]
                )
            except GovernanceError as error:
                form.add_error(None, str(error))
            else:
                messages.success(request, f"{version.protocol} v{version.number} (draft) deleted.")
                return HttpResponseRedirect(reverse("admin:protocols_protocol_change", args=[version.protocol_id]))
        return self._action_page(request, version, form, "delete", f"Delete {version}", preview_rows=None)

    def save_model(self, request, obj, form, change):
        if change:
            super().save_model(request, obj, form, change)
        else:
            protocol_version_first_create(version=obj, author=request.user)

    def save_formset(self, request, form, formset, change):
        super().save_formset(request, form, formset, change)
        if formset.model is not DosingStep:
            return
        for step_form in formset.forms:
            deleted = step_form in formset.deleted_forms
            if deleted or step_form.instance.pk is None:
                continue
            if "cited_references" in step_form.changed_data:
                dosing_step_citations_set(
                    step=step_form.instance, references=step_form.cleaned_data["cited_references"], actor=request.user
                )
            if step_form.unusual_amounts:
                dosing_step_amounts_confirm(
                    step=step_form.instance,
                    amounts=step_form.unusual_amounts,
                    reason=step_form.cleaned_data["unusual_amount_reason"],
                    actor=request.user,
                )

    # --- pages --------------------------------------------------------------------------------

    def get_urls(self):
        def route(suffix: str, view):
            return path(
                f"<path:object_id>/{suffix.replace('_', '-')}/",
                self.admin_site.admin_view(view),
                name=f"protocols_protocolversion_{suffix}",
            )

        def governance_route(action: str):
            # One view for the three workflow steps; the step is a keyword argument of the route.
            view = self.admin_site.admin_view(self.governance_action_view)
            return path(
                f"<path:object_id>/{action}/", view, {"action": action}, name=f"protocols_protocolversion_{action}"
            )

        return [
            *(governance_route(action) for action in self.GOVERNANCE_ACTIONS),
            route("diff", self.diff_view),
            route("change_record", self.change_record_view),
            *super().get_urls(),
        ]

    def _version(self, request, object_id) -> ProtocolVersion:
        version = self.get_object(request, object_id)
        if version is None:
            raise Http404("No such protocol version.")
        if not self.has_view_or_change_permission(request, version):
            raise PermissionDenied
        return version

    def _reviewable(self, request, version: ProtocolVersion) -> bool:
        return version.status == VersionStatus.SUBMITTED and request.user.has_perm(APPROVE_PERMISSION)

    def _review_overtaken(self, request, version: ProtocolVersion):
        """A review posted after another pharmacist already approved or returned the version: say so."""
        if request.method != "POST" or not request.user.has_perm(APPROVE_PERMISSION):
            raise PermissionDenied
        messages.error(
            request,
            f"{version.protocol} v{version.number} is {version.get_status_display().lower()} now, no longer "
            "awaiting approval (another pharmacist acted on it first). Nothing was changed.",
        )
        return HttpResponseRedirect(reverse("admin:protocols_protocolversion_change", args=[version.pk]))

    def change_view(self, request, object_id, form_url="", extra_context=None):
        version = self.get_object(request, object_id)
        extra_context = extra_context or {}
        if version is not None and self.has_view_or_change_permission(request, version):
            open_ = version.status in (VersionStatus.DRAFT, VersionStatus.SUBMITTED)
            reviewable = self._reviewable(request, version)
            extra_context |= {
                "governance": version_governance(version=version),
                "change_review": protocol_version_change_review(version_id=version.pk) if open_ else None,
                "own_work": reviewable and request.user.pk in protocol_version_editor_ids(version=version),
                "can_submit": self.has_change_permission(request, version),
                "can_edit_test_patients": self.has_change_permission(request, version)
                and request.user.has_perm("protocols.change_protocoltestpatient"),
                "can_review": reviewable,
                "preview_rows": protocol_version_preview(version_id=version.pk) if open_ else None,
                "audit_events": audit_events_for(subject_type=SUBJECT, subject_id=version.pk)[:20],
            }
        return super().change_view(request, object_id, form_url, extra_context)

    def history_view(self, request, object_id, extra_context=None):
        version_id = self.history_pk(object_id)
        extra_context = (extra_context or {}) | {"row_history": protocol_version_row_history(version_id=version_id)}
        return super().history_view(request, object_id, extra_context)

    def _action_page(self, request, version, form, action: str, title: str, **extra):
        context = {
            **self.admin_site.each_context(request),
            "title": title,
            "opts": self.opts,
            "original": version,
            "form": form,
            "action": action,
            "governance": version_governance(version=version),
            **extra,
        }
        if "preview_rows" not in context:
            context["preview_rows"] = protocol_version_preview(version_id=version.pk)
        return TemplateResponse(request, "admin/protocols/governance_action.html", context)

    def _done(self, request, version, message: str):
        messages.success(request, message)
        return HttpResponseRedirect(reverse("admin:protocols_protocolversion_change", args=[version.pk]))

    GOVERNANCE_ACTIONS = ("submit", "approve", "reject")

    def governance_action_view(self, request, object_id, action: str):
        """Submit a version for approval, approve and publish it, or return it to draft: a form beside the
        version's governance facts and its test patients' answers, and one service call on a valid POST.
        Submitting needs the right to change the version; approving and returning, a submitted version and
        the right to approve (otherwise another pharmacist acted first, and the page says so)."""
        version = self._version(request, object_id)
        if action == "submit":
            if not self.has_change_permission(request, version):
                raise PermissionDenied
        elif not self._reviewable(request, version):
            return self._review_overtaken(request, version)
        step = getattr(self, f"_{action}_step")(request, version)
        if request.method == "POST" and step.form.is_valid():
            try:
                step.perform(step.form.cleaned_data)
            except GovernanceError as error:
                signature = isinstance(error, SignatureRefused) and "password" in step.form.fields
                step.form.add_error("password" if signature else None, str(error))
            else:
                return self._done(request, version, step.done_message)
        return self._action_page(request, version, step.form, action, step.title, **step.page_context())

    def _submit_step(self, request, version: ProtocolVersion) -> _GovernanceStep:
        review = protocol_version_change_review(version_id=version.pk)
        form = SubmitForm(
            request.POST or None,
            initial={"revision": version.edit_revision, "change_reason": version.change_reason},
            uncovered=bool(review.uncovered),
        )

        def perform(data: dict) -> None:
            protocol_version_submit(
                version=version,
                submitted_by=request.user,
                change_reason=data["change_reason"],
                expected_revision=data["revision"],
                coverage_note=data.get("coverage_note", ""),
                request_base_url=request.build_absolute_uri("/"),
            )

        return _GovernanceStep(
            form=form,
            perform=perform,
            done_message=f"{version.protocol} v{version.number} submitted for approval.",
            title=f"Submit {version} for approval",
            page_context=lambda: {"change_review": review},
        )

    def _approve_step(self, request, version: ProtocolVersion) -> _GovernanceStep:
        def perform(data: dict) -> None:
            protocol_version_approve(
                version=version,
                approved_by=request.user,
                password=data["password"],
                approval_note=data["approval_note"],
                next_review=data["next_review"],
                expected_revision=data["revision"],
            )

        return _GovernanceStep(
            form=ApproveForm(request.POST or None, initial={"revision": version.edit_revision}),
            perform=perform,
            done_message=f"{version.protocol} v{version.number} approved and published; it is live now.",
            title=f"Approve and publish {version}",
            page_context=lambda: {
                "own_work": request.user.pk in protocol_version_editor_ids(version=version),
                "change_review": protocol_version_change_review(version_id=version.pk),
                **self._diff_against_previous(version),
            },
        )

    def _reject_step(self, request, version: ProtocolVersion) -> _GovernanceStep:
        def perform(data: dict) -> None:
            protocol_version_reject(
                version=version, rejected_by=request.user, reason=data["reason"], expected_revision=data["revision"]
            )

        return _GovernanceStep(
            form=RejectForm(request.POST or None, initial={"revision": version.edit_revision}),
            perform=perform,
            done_message=f"{version.protocol} v{version.number} returned to draft.",
            title=f"Return {version} to draft",
            page_context=dict,
        )

    def _diff_against_previous(self, version: ProtocolVersion) -> dict:
        other = protocol_version_default_comparison(version=version)
        if other is None:
            return {"diff_old": None, "diff_sections": None}
        return {
            "diff_old": other,
            "diff_sections": protocol_version_diff(old_version_id=other.pk, new_version_id=version.pk),
        }

    def change_record_view(self, request, object_id):
        """One printable document for the pharmacy and therapeutics committee."""
        version = self._version(request, object_id)
        context = {
            "record": protocol_version_change_record(version_id=version.pk),
            "printed_at": timezone.now(),
            "printed_by": request.user,
        }
        return TemplateResponse(request, "admin/protocols/protocolversion/change_record.html", context)

    def diff_view(self, request, object_id):
        version = self._version(request, object_id)
        versions = list(ProtocolVersion.objects.filter(protocol_id=version.protocol_id).order_by("-number"))
        against_id = request.GET.get("against", "")
        other = next((v for v in versions if str(v.pk) == against_id), None) if against_id else None
        if against_id and other is None:
            raise Http404("No such version of this protocol.")
        other = other or protocol_version_default_comparison(version=version)
        old, new = (other, version) if other is None or other.number < version.number else (version, other)
        sections = protocol_version_diff(old_version_id=old.pk, new_version_id=new.pk) if other else None
        context = {
            **self.admin_site.each_context(request),
            "title": f"Differences: {version.protocol}",
            "opts": self.opts,
            "original": version,
            "other": other,
            "old": old,
            "new": new,
            "versions": [v for v in versions if v.pk != version.pk],
            "sections": sections,
        }
        return TemplateResponse(request, "admin/protocols/protocolversion/diff.html", context)


# --- Test patients -----------------------------------------------------------------------------------


@admin.register(ProtocolTestPatient)
class ProtocolTestPatientAdmin(HistoryAdmin):
    """Test patients belong to a version: added to and edited in a draft, read-only once published."""

    form = ProtocolTestPatientForm
    list_display = ("label", "version_label", "expected_status", "expected_step_name", "expected_amounts", "outcome")
    list_filter = ("version__protocol", "version__status")
    list_select_related = ("version__protocol__institution",)
    search_fields = ("label", "expected_step_name")
    fieldsets = [
        (None, {"fields": ("version", "label")}),
        (
            "Patient (the bedside's questions)",
            {
                "fields": (
                    ("weight_kg", "age_years"),
                    "car_target",
                    "days_since_infusion",
                    ("fever", "hypotension"),
                )
            },
        ),
        (
            "Toxicities and treatment",
            {
                "fields": (
                    ("crs_grade", "icans_grade", "carhlh_grade"),
                    "late_onset_isolated",
                    ("prior_tocilizumab_doses", "prior_steroids"),
                )
            },
        ),
        (
            "Safety",
            {
                "fields": (
                    "ecoli_protein_hypersensitivity",
                    "active_infection",
                    "concurrent_tnf_blocker",
                    "thrombocytopenia_or_coagulopathy",
                    "creatinine_clearance_ml_min",
                )
            },
        ),
        (
            "Expected answer",
            {
                "fields": (
                    "expected_status",
                    "expected_step_name",
                    ("expected_per_dose_low_mg", "expected_per_dose_high_mg"),
                    ("expected_per_day_low_mg", "expected_per_day_high_mg"),
                    "arithmetic",
                )
            },
        ),
    ]

    @staticmethod
    def _in_draft(obj) -> bool:
        return obj is None or obj.version.status == VersionStatus.DRAFT

    def has_change_permission(self, request, obj=None):
        return super().has_change_permission(request, obj) and self._in_draft(obj)

    def has_delete_permission(self, request, obj=None):
        return super().has_delete_permission(request, obj) and self._in_draft(obj)

    def get_readonly_fields(self, request, obj=None):
        return ("version", "patient") if obj is not None else ()

    def get_fieldsets(self, request, obj=None):
        if obj is not None and not self.has_change_permission(request, obj):
            # Read-only: the stored answers as words instead of the form's questions.
            return [
                (None, {"fields": ("version", "label", "patient")}),
                self.fieldsets[-1],
            ]
        return self.fieldsets

    @admin.display(description="patient")
    def patient(self, obj):
        return patient_inputs_text(obj.inputs)

    @admin.display(description="version", ordering="version__protocol__institution__name")
    def version_label(self, obj):
        version = obj.version
        return f"{version.protocol.institution.short_name} v{version.number} ({version.get_status_display().lower()})"

    @admin.display(description="expected amounts")
    def expected_amounts(self, obj):
        if not obj.expected_step_name:
            return "status only"
        dose = (
            "no per-dose amount"
            if obj.expected_per_dose_low_mg is None
            else f"{range_text(DoseRange(obj.expected_per_dose_low_mg, obj.expected_per_dose_high_mg))} per dose"
        )
        day = range_text(DoseRange(obj.expected_per_day_low_mg, obj.expected_per_day_high_mg), "mg/day")
        return f"{dose}; {day}"

    @admin.display(description="on its version")
    def outcome(self, obj):
        outcome = getattr(obj, "own_outcome", None)
        if outcome is None:
            return "-"
        if outcome.passed:
            return format_html('<span class="gov-flag gov-flag-current">{}</span>', "passes")
        return format_html('<span class="gov-flag gov-flag-overdue">fails: {}</span>', "; ".join(outcome.problems))

    def get_changelist_instance(self, request):
        changelist = super().get_changelist_instance(request)
        # One engine run per row; each version read once (published ones from the cached catalog).
        outcomes = test_patient_outcomes(test_patients=changelist.result_list)
        for test_patient in changelist.result_list:
            test_patient.own_outcome = outcomes[test_patient.pk]
        return changelist

    def change_view(self, request, object_id, form_url="", extra_context=None):
        test_patient = self.get_object(request, object_id)
        extra_context = extra_context or {}
        if test_patient is not None:
            extra_context["runs"] = protocol_test_patient_runs(test_patient=test_patient)
        return super().change_view(request, object_id, form_url, extra_context)

    def _back_to_version(self, request, obj, response):
        # Test patients are edited as part of their draft: back to the draft's page after saving.
        if "_continue" in request.POST or "_addanother" in request.POST:
            return response
        return HttpResponseRedirect(reverse("admin:protocols_protocolversion_change", args=[obj.version_id]))

    def response_add(self, request, obj, post_url_continue=None):
        return self._back_to_version(request, obj, super().response_add(request, obj, post_url_continue))

    def response_change(self, request, obj):
        return self._back_to_version(request, obj, super().response_change(request, obj))
