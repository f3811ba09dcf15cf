"""SMART App Launch pages: the EHR launch, the standalone launch and the redirect back from the EHR.

Thin views: the protocol is in `smart.oauth`, the writes in `smart.services`, the reads in `smart.selectors`.
A launch that cannot go on shows why (and what to do), never a 500.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from cds_hooks.config import Issuer
from smart.oauth import LaunchFailed
from smart.selectors import smart_issuer_for_server, smart_issuers
from smart.services import (
    launch_begin,
    launch_complete,
    launch_refused_record,
    patient_context_reread,
    pending_authorization_pop,
    smart_session_mark,
)

# A launch parameter is an opaque handle; anything longer than this is not one.
MAX_PARAMETER = 2000


def _redirect_uri(request: HttpRequest) -> str:
    """The callback URL registered with every EHR: fixed, from SITE_URL when set."""
    path = reverse("smart_callback")
    return f"{settings.SITE_URL}{path}" if settings.SITE_URL else request.build_absolute_uri(path)


def _failed(request: HttpRequest, message: str, *, status: int) -> HttpResponse:
    return render(request, "smart/launch_failed.html", {"message": message}, status=status)


def _begin(request: HttpRequest, *, issuer: Issuer, fhir_server: str, launch: str | None) -> HttpResponse:
    smart_session_mark(session=request.session, issuer=issuer)
    try:
        url = launch_begin(
            session=request.session,
            issuer=issuer,
            fhir_server=fhir_server,
            launch=launch,
            redirect_uri=_redirect_uri(request),
        )
    except LaunchFailed as failure:
        launch_refused_record(
            issuer=issuer, fhir_server=fhir_server, ehr_launch=launch is not None, reason=str(failure)
        )
        return _failed(request, str(failure), status=502)
    return redirect(url)


def _registered(request: HttpRequest) -> tuple[Issuer | None, str, HttpResponse | None]:
    fhir_server = request.GET.get("iss", "").strip()
    if not fhir_server or len(fhir_server) > MAX_PARAMETER:
        return None, "", _failed(request, "The launch did not say which EHR it came from (no iss).", status=400)
    issuer = smart_issuer_for_server(fhir_server=fhir_server)
    if issuer is None:
        message = f"This EHR ({fhir_server}) is not registered with this app: ask the administrator to register it."
        return None, "", _failed(request, message, status=400)
    return issuer, fhir_server.rstrip("/"), None


@require_GET
def ehr_launch(request: HttpRequest) -> HttpResponse:
    """The launch URL an EHR opens (window or frame) with `iss` (its FHIR server) and `launch`."""
    issuer, fhir_server, refusal = _registered(request)
    if refusal is not None:
        return refusal
    assert issuer is not None
    launch = request.GET.get("launch", "").strip()
    if not launch or len(launch) > MAX_PARAMETER:
        return _failed(request, "The EHR's launch has no launch context (launch parameter).", status=400)
    return _begin(request, issuer=issuer, fhir_server=fhir_server, launch=launch)


@require_GET
def standalone_launch(request: HttpRequest) -> HttpResponse:
    """Opened outside the EHR: pick a registered EHR, which then asks for the patient (launch/patient)."""
    if "iss" not in request.GET:
        servers = [(i.iss, server) for i in smart_issuers() if i.smart is not None for server in i.smart.fhir_servers]
        return render(request, "smart/standalone.html", {"servers": servers})
    issuer, fhir_server, refusal = _registered(request)
    if refusal is not None:
        return refusal
    assert issuer is not None
    return _begin(request, issuer=issuer, fhir_server=fhir_server, launch=None)


@require_GET
def callback(request: HttpRequest) -> HttpResponse:
    """The redirect URI: the EHR's answer (code and state, or an error) to an authorization request."""
    state = request.GET.get("state", "")
    pending = pending_authorization_pop(session=request.session, state=state[:MAX_PARAMETER])
    if pending is None:
        message = (
            "This sign-in was not started in this browser session, was already used, or has expired "
            "(10 minutes). Open the app from the EHR again."
        )
        return _failed(request, message, status=400)
    try:
        launch_complete(
            request=request,
            pending=pending,
            code=request.GET.get("code", "")[:MAX_PARAMETER],
            error=request.GET.get("error", "")[:MAX_PARAMETER],
            redirect_uri=_redirect_uri(request),
        )
    except LaunchFailed as failure:
        return _failed(request, str(failure), status=400)
    return redirect("home")


@login_required
@require_POST
def reread(request: HttpRequest) -> HttpResponse:
    """Read the EHR again for the launch's patient (a weight recorded since, say), while the launch lasts."""
    if patient_context_reread(session=request.session, now=timezone.now()) is None:
        messages.warning(
            request,
            "The EHR launch has ended (after 60 minutes, or once the result was stored): open the app from the EHR "
            "again.",
        )
    else:
        messages.info(request, "Read again from the EHR: check every value.")
    return redirect("home")
