"""Bedside pages: the wizard, the result, the printable order summary, and the reading pages.

Thin views: the flow lives in `bedside.wizard`, writes in `bedside.services`, reads in
`bedside.selectors`, words and notation in `bedside.presentation`. Pages that hold a patient's answers (the
wizard, the result, the print page) are never cached: ward computers are shared.
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from pydantic import ValidationError

from bedside import wizard
from bedside.forms import EvidenceFilterForm, ToxicitiesForm
from bedside.presentation import (
    input_rows,
    present_preview_recommendation,
    present_recommendation,
    result_view,
    review_flag,
    toxicity_rows,
)
from bedside.selectors import (
    assessment_for_display,
    assessment_newer_versions,
    grading_reference,
    institution_choice_get,
    institution_protocol_list,
    protocol_detail,
    protocol_version_bedside_preview,
    published_institution_choices,
    reference_list,
    study_list,
)
from bedside.services import UnknownInstitution, bedside_assessment_create
from bedside.wizard import STEPS, StepState, WizardAnswers
from engine.inputs import RecommendationRequest, validation_errors
from engine.vocabulary import Toxicity

# --- The wizard -------------------------------------------------------------------------------------


def _step_url(step: wizard.Step) -> str:
    return reverse("home") if step is STEPS[0] else reverse("wizard_step", kwargs={"slug": step.slug})


def _redirect_to(step: wizard.Step) -> HttpResponse:
    return redirect(_step_url(step))


def _nav(states: list[StepState], current: wizard.Step) -> list[dict[str, Any]]:
    """Each step with whether it is done, current, or reachable (every earlier step complete)."""
    reachable = True
    items = []
    for state in states:
        items.append(
            {
                "step": state.step,
                "number": wizard.step_index(state.step) + 1,
                "complete": state.complete,
                "current": state.step is current,
                "reachable": reachable,
            }
        )
        reachable = reachable and state.complete
    return items


def _render_step(
    request: HttpRequest, step: wizard.Step, form: Any, states: list[StepState], answers: WizardAnswers
) -> HttpResponse:
    context: dict[str, Any] = {
        "step": step,
        "form": form,
        "nav": _nav(states, step),
        "is_first": step is STEPS[0],
        "is_last": step is STEPS[-1],
        "finished_assessment": answers.finished_assessment,
        "nav_section": "wizard",
    }
    if isinstance(form, ToxicitiesForm):
        context["grading"] = form.context
        # A grade is shown once its own answers validate, whatever the other toxicities still lack.
        context["outcomes"] = form.outcomes_by_name if form.is_bound else {}
        context["calculated"] = form.only.value if form.only is not None else ""
        context["grading_source"] = grading_reference()
    return render(request, step.template, context)


def _step_form(step: wizard.Step, state: StepState, states: list[StepState], request: HttpRequest) -> Any:
    """The form to show on GET: the stored answers if they validate (so results show), else as typed."""
    if state.form is not None and state.complete:
        return state.form
    kwargs = _form_kwargs(step, states)
    stored = WizardAnswers(request.session).for_step(step)
    initial = {name: value for name, value in stored.items() if value != ""}
    if step is wizard.PATIENT and not initial.get("institution"):
        initial["institution"] = institution_choice_get(user=request.user) or ""
    return step.form_class(initial=initial, **kwargs)


def _form_kwargs(step: wizard.Step, states: list[StepState]) -> dict[str, Any]:
    cleaned = {s.step.slug: s.cleaned for s in states if s.complete and s.cleaned is not None}
    kwargs = wizard.form_kwargs_for(step, cleaned, published_institution_choices)
    assert kwargs is not None, "earlier steps are complete before a step is shown"
    return kwargs


def _wizard_step(request: HttpRequest, step: wizard.Step) -> HttpResponse:
    answers = WizardAnswers(request.session)
    if request.method == "POST":
        # Before anything else: nothing typed is ever lost, even if this step cannot be used yet.
        answers.save_step(step, wizard.raw_answers(step, request.POST))
        if request.POST.get("action") == "new_patient":
            # Saved first, so "Keep my answers" on the question that follows brings back this step as typed.
            return redirect(f"{reverse('wizard_reset')}?step={step.slug}")
    states = wizard.evaluate(answers, published_institution_choices)
    index = wizard.step_index(step)
    blocking = next((s for s in states[:index] if not s.complete), None)
    if blocking is not None:
        messages.info(request, f"Complete “{blocking.step.title}” first.")
        return _redirect_to(blocking.step)

    if request.method != "POST":
        return _render_step(request, step, _step_form(step, states[index], states, request), states, answers)

    goto = wizard.STEPS_BY_SLUG.get(request.POST.get("goto", ""))
    if goto is not None:
        return _redirect_to(goto)
    action = request.POST.get("action", "next")
    if action == "back" and index > 0:
        return _redirect_to(STEPS[index - 1])

    calculate = _toxicity_to_calculate(request.POST.get("calculate", ""))
    if step is wizard.TOXICITIES and calculate is not None:
        # One toxicity's grade only: the page lands on it (the button's address ends in its anchor).
        form = ToxicitiesForm(data=answers.for_step(step), only=calculate, **_form_kwargs(step, states))
        form.is_valid()
        return _render_step(request, step, form, states, answers)
    form = states[index].form or step.form_class(data=answers.for_step(step), **_form_kwargs(step, states))
    if not form.is_valid():
        return _render_step(request, step, form, states, answers)
    if step is STEPS[-1]:
        return _finish(request, answers, states)
    return _redirect_to(STEPS[index + 1])


def _toxicity_to_calculate(value: str) -> Toxicity | None:
    try:
        return Toxicity(value)
    except ValueError:
        return None


def _finish(request: HttpRequest, answers: WizardAnswers, states: list[StepState]) -> HttpResponse:
    incomplete = wizard.first_incomplete(states)
    if incomplete is not None:
        messages.error(request, f"“{incomplete.step.title}” needs attention before the recommendation.")
        return _redirect_to(incomplete.step)
    try:
        parsed = RecommendationRequest.model_validate(wizard.recommendation_request_data(states))
    except ValidationError as error:
        errors = validation_errors(error)
        field = next(iter(errors))
        detail = "; ".join(f"{name}: {' '.join(problems)}" for name, problems in errors.items())
        messages.error(request, f"Some answers need attention: {detail}")
        return _redirect_to(wizard.FIELD_STEPS.get(field, STEPS[0]))
    gradings = wizard.grading_records(states, answers.for_step(wizard.TOXICITIES))
    try:
        assessment = bedside_assessment_create(request=parsed, gradings=gradings, user=request.user)
    except UnknownInstitution:
        messages.error(request, "That institution has no published protocol now: choose another.")
        return _redirect_to(wizard.PATIENT)
    answers.mark_finished(str(assessment.id))
    return redirect("assessment_result", assessment_id=assessment.id)


@never_cache
@login_required
@require_http_methods(["GET", "POST"])
def wizard_home(request: HttpRequest) -> HttpResponse:
    return _wizard_step(request, STEPS[0])


@never_cache
@login_required
@require_http_methods(["GET", "POST"])
def wizard_step(request: HttpRequest, slug: str) -> HttpResponse:
    if slug in wizard.FORMER_STEPS:
        return _redirect_to(wizard.FORMER_STEPS[slug])
    step = wizard.STEPS_BY_SLUG.get(slug)
    if step is None:
        raise Http404("No such step.")
    if step is STEPS[0]:
        return redirect("home")
    return _wizard_step(request, step)


@never_cache
@login_required
@require_http_methods(["GET", "POST"])
def wizard_reset(request: HttpRequest) -> HttpResponse:
    """POST clears the answers. A GET (a typed or bookmarked address) only asks, so nothing is lost by it."""
    if request.method != "POST":
        in_progress = not WizardAnswers(request.session).is_empty
        back = wizard.STEPS_BY_SLUG.get(request.GET.get("step", ""), STEPS[0])
        context = {"in_progress": in_progress, "back_url": _step_url(back), "nav_section": "wizard"}
        return render(request, "bedside/reset_confirm.html", context)
    WizardAnswers(request.session).reset()
    messages.info(request, "Answers cleared: start the new patient below.")
    return redirect("home")


@never_cache
@login_required
@require_POST
def wizard_change_answers(request: HttpRequest, assessment_id: Any) -> HttpResponse:
    """The result page's "Change answers": the wizard with every answer this assessment was made from.

    Answers the wizard still holds for it are kept as typed; otherwise they are filled in again from the
    stored assessment. Answers in progress for another patient are replaced only once the user says so."""
    assessment = _assessment_or_404(assessment_id)
    answers = WizardAnswers(request.session)
    if answers.finished_assessment == str(assessment.id):
        return _redirect_to(wizard.TOXICITIES)
    if not answers.is_empty and request.POST.get("replace") != "yes":
        return render(
            request, "bedside/change_answers_confirm.html", {"assessment": assessment, "nav_section": "wizard"}
        )
    gradings = assessment.bedside_grading.toxicities if hasattr(assessment, "bedside_grading") else []
    answers.fill(wizard.answers_from_assessment(assessment.inputs, gradings), finished_assessment=str(assessment.id))
    missing = wizard.findings_not_kept(gradings)
    if missing:
        grades = " and ".join(missing)
        messages.warning(
            request,
            f"Every answer of this assessment is filled in again, except the findings behind its computed {grades} "
            f"grade{'s' if len(missing) > 1 else ''} (not kept with it): enter them again. Change what you need.",
        )
    else:
        messages.info(request, "Every answer of this assessment is filled in again: change what you need.")
    return _redirect_to(wizard.TOXICITIES)


@never_cache
@login_required
@require_http_methods(["GET", "POST"])
def wizard_start(request: HttpRequest) -> HttpResponse:
    """Start a new patient with answers from the link (the EHR sends what it knows; grades it cannot).

    A GET only shows what the link carries: a link from anywhere must never wipe answers in progress.
    The page's POST button (CSRF-protected, same query string) resets and fills the wizard."""
    institutions = dict(published_institution_choices())  # one query gives both the slugs and the names
    prefill = wizard.prefill_from_query(request.GET, frozenset(institutions))
    if request.method != "POST":
        context = {
            "rows": wizard.prefill_rows(prefill, institutions),
            "prefill": prefill,
            "in_progress": not WizardAnswers(request.session).is_empty,
            "query": request.GET.urlencode(),
            "nav_section": "wizard",
        }
        return render(request, "bedside/start_confirm.html", context)
    answers = WizardAnswers(request.session)
    answers.reset()
    for step in STEPS:
        if step.slug in prefill.answers:
            answers.save_step(step, prefill.answers[step.slug])
    if prefill.used:
        messages.info(request, f"Filled in from the link: {', '.join(prefill.used)}. Check every answer.")
    if prefill.invalid:
        invalid = "; ".join(prefill.invalid)
        messages.warning(request, f"Ignored invalid values: {invalid}{'' if invalid.endswith('.') else '.'}")
    if prefill.unknown:
        messages.warning(request, "Ignored unknown parameters: " + ", ".join(prefill.unknown) + ".")
    return redirect("home")


# --- Result and print -------------------------------------------------------------------------------


def _assessment_or_404(assessment_id: Any):
    assessment = assessment_for_display(assessment_id=assessment_id)
    if assessment is None:
        raise Http404("No assessment with this id.")
    return assessment


@never_cache
@login_required
@require_GET
def assessment_result(request: HttpRequest, assessment_id: Any) -> HttpResponse:
    assessment = _assessment_or_404(assessment_id)
    view = result_view(assessment, requested_slug=request.GET.get("institution"))
    context = {
        "assessment": assessment,
        "view": view,
        "newer_versions": assessment_newer_versions(assessment=assessment),
        "nav_section": "wizard",
    }
    return render(request, "assessments/result.html", context)


@never_cache
@login_required
@require_GET
def assessment_print(request: HttpRequest, assessment_id: Any) -> HttpResponse:
    assessment = _assessment_or_404(assessment_id)
    view = result_view(assessment, requested_slug=request.GET.get("institution"))
    context = {
        "assessment": assessment,
        "view": view,
        "newer_versions": assessment_newer_versions(assessment=assessment),
        "nav_section": "wizard",
    }
    return render(request, "assessments/print.html", context)


# --- Reading pages ----------------------------------------------------------------------------------


@login_required
@require_GET
def evidence_list(request: HttpRequest) -> HttpResponse:
    form = EvidenceFilterForm(request.GET or None)
    filters = form.cleaned_data if form.is_bound and form.is_valid() else {}
    studies = list(study_list(toxicity=filters.get("toxicity", ""), population=filters.get("population", "")))
    return render(
        request,
        "bedside/evidence.html",
        {
            "form": form,
            "studies": studies,
            "references": list(reference_list()),
            "filtered": any(filters.values()),
            "nav_section": "evidence",
        },
    )


@login_required
@require_GET
def protocol_list(request: HttpRequest) -> HttpResponse:
    today = timezone.localdate()
    rows = []
    for institution in institution_protocol_list():
        protocol = getattr(institution, "protocol", None)
        current = protocol.published_versions[0] if protocol and protocol.published_versions else None
        rows.append({"institution": institution, "current": current, "flag": review_flag(current, today=today)})
    return render(request, "bedside/protocol_list.html", {"rows": rows, "nav_section": "protocols"})


@login_required
@require_GET
def protocol_detail_view(request: HttpRequest, slug: str) -> HttpResponse:
    detail = protocol_detail(slug=slug)
    if detail is None:
        raise Http404("No such institution.")
    flag = review_flag(detail.current, today=timezone.localdate())
    return render(request, "bedside/protocol_detail.html", {"detail": detail, "flag": flag, "nav_section": "protocols"})


@login_required
@require_GET
def protocol_version_preview(request: HttpRequest, slug: str, version_id: int) -> HttpResponse:
    """A draft as the bedside shows it, beside the published version, with a test patient's answer on each:
    for pharmacists reviewing a change (nothing is stored)."""
    if not request.user.has_perm("protocols.view_protocolversion"):
        raise PermissionDenied
    preview = protocol_version_bedside_preview(
        slug=slug, version_id=version_id, test_patient_id=request.GET.get("patient")
    )
    if preview is None:
        raise Http404("No such version of this protocol.")
    published_rec = present_recommendation(preview.published_answer) if preview.published_answer else None
    if published_rec is not None:
        # Both cards are the same center's: the published one's element ids get a suffix to stay unique.
        published_rec["institution"] = {**published_rec["institution"], "slug": f"{preview.institution.slug}-published"}
    context = {
        "preview": preview,
        "view": {
            "inputs": input_rows(preview.patient_inputs) if preview.patient_inputs else [],
            "toxicities": toxicity_rows(preview.patient_inputs, None) if preview.patient_inputs else [],
        },
        "version_rec": (
            present_preview_recommendation(preview.version_answer, version=preview.version)
            if preview.version_answer
            else None
        ),
        "published_rec": published_rec,
        "nav_section": "protocols",
    }
    return render(request, "bedside/protocol_version_preview.html", context)
