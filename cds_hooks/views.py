"""CDS Hooks endpoints: discovery, the two order services, and feedback. Thin: check the caller,
validate the body, call a service, answer JSON."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.utils.cache import patch_vary_headers
from django.views.decorators.csrf import csrf_exempt
from pydantic import ValidationError

from anakinra_cds import jsonutil
from api.responses import ApiResponse, error_response
from cds_hooks.auth import InvalidToken, cds_client_verify
from cds_hooks.catalog import SERVICES, discovery_document
from cds_hooks.schemas import FeedbackRequest, HookRequest, errors_of
from cds_hooks.services import PreconditionFailed, feedback_record, hook_response_create

CORS_METHODS = "GET, POST, OPTIONS"
CORS_HEADERS = "Authorization, Content-Type"
CORS_MAX_AGE_SECONDS = "600"


def base_url(request: HttpRequest) -> str:
    """This service's public base URL: SITE_URL, or (when it is empty) the request's own."""
    return settings.SITE_URL or request.build_absolute_uri("/").rstrip("/")


def _unauthorized() -> HttpResponse:
    # A bare 401: nothing says which check failed.
    return HttpResponse(status=401, headers={"WWW-Authenticate": "Bearer"})


def cds_cors(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """CORS for browser-based CDS clients, and only for the origins in CDS_HOOKS_CORS_ORIGINS."""

    @wraps(view)
    def wrapper(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        origin = request.headers.get("Origin")
        allowed = origin is not None and origin in settings.CDS_HOOKS_CORS_ORIGINS
        if request.method == "OPTIONS":
            response = HttpResponse(status=204)
            if allowed:
                response["Access-Control-Allow-Methods"] = CORS_METHODS
                response["Access-Control-Allow-Headers"] = CORS_HEADERS
                response["Access-Control-Max-Age"] = CORS_MAX_AGE_SECONDS
        else:
            response = view(request, *args, **kwargs)
        if allowed:
            response["Access-Control-Allow-Origin"] = origin
        patch_vary_headers(response, ["Origin"])
        return response

    return csrf_exempt(wrapper)


def cds_client_required(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Every call carries the EHR's JWT, with `aud` the exact URL of the endpoint called."""

    @wraps(view)
    def wrapper(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        audience = base_url(request) + request.path
        try:
            request.cds_client = cds_client_verify(
                authorization=request.headers.get("Authorization", ""), audience=audience
            )
        except InvalidToken:
            return _unauthorized()
        return view(request, *args, **kwargs)

    return wrapper


def _method_not_allowed(allowed: str) -> HttpResponse:
    return HttpResponse(status=405, headers={"Allow": allowed})


def _body(request: HttpRequest) -> tuple[object | None, dict[str, list[str]]]:
    try:
        return jsonutil.loads(request.body or b""), {}
    except (ValueError, UnicodeDecodeError) as error:
        return None, {"body": [f"Malformed JSON: {error}"]}


@cds_cors
def discovery(request: HttpRequest) -> HttpResponse:
    if request.method != "GET":
        return _method_not_allowed("GET, OPTIONS")
    return _discovery(request)


@cds_client_required
def _discovery(request: HttpRequest) -> HttpResponse:
    return ApiResponse(discovery_document())


@cds_cors
def service(request: HttpRequest, service_id: str) -> HttpResponse:
    if request.method != "POST":
        return _method_not_allowed("POST, OPTIONS")
    return _service(request, service_id)


@cds_client_required
def _service(request: HttpRequest, service_id: str) -> HttpResponse:
    cds_service = SERVICES.get(service_id)
    if cds_service is None:
        return error_response({"service": [f"No CDS service {service_id!r}."]}, status=404)
    data, errors = _body(request)
    if errors:
        return error_response(errors)
    try:
        hook_request = HookRequest.model_validate(data)
    except ValidationError as error:
        return error_response(errors_of(error))
    if hook_request.hook != cds_service.hook:
        return error_response({"hook": [f"This service answers {cds_service.hook!r}."]})
    if cds_service.hook == "order-select" and not hook_request.context.selections:
        return error_response({"context.selections": ["order-select needs the selected order ids."]})
    try:
        answer = hook_response_create(
            service=cds_service, request=hook_request, client=request.cds_client, base_url=base_url(request)
        )
    except PreconditionFailed as error:
        return error_response({"prefetch": [f"The patient's weight is needed: {error}."]}, status=412)
    return ApiResponse(answer)


@cds_cors
def feedback(request: HttpRequest, service_id: str) -> HttpResponse:
    if request.method != "POST":
        return _method_not_allowed("POST, OPTIONS")
    return _feedback(request, service_id)


@cds_client_required
def _feedback(request: HttpRequest, service_id: str) -> HttpResponse:
    cds_service = SERVICES.get(service_id)
    if cds_service is None:
        return error_response({"service": [f"No CDS service {service_id!r}."]}, status=404)
    data, errors = _body(request)
    if errors:
        return error_response(errors)
    try:
        parsed = FeedbackRequest.model_validate(data)
    except ValidationError as error:
        return error_response(errors_of(error))
    feedback_record(service=cds_service, items=parsed.feedback, client=request.cds_client)
    return HttpResponse(status=200)
