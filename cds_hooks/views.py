"""CDS Hooks endpoints: discovery, the two order services, and feedback. Thin: check the caller,
validate the body, call a service, answer JSON."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.utils.cache import patch_vary_headers
from django.views.decorators.csrf import csrf_exempt
from pydantic import BaseModel, ValidationError

from anakinra_cds import jsonutil
from anakinra_cds.json_responses import ApiResponse, error_response
from cds_hooks.auth import InvalidToken, cds_client_verify
from cds_hooks.catalog import SERVICES, CdsService, discovery_document
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


def _method_not_allowed(request: HttpRequest, method: str) -> HttpResponse:
    # In the API's one error shape, like every other CDS Hooks error (docs/api.md).
    response = error_response({"method": [f"{request.method} is not allowed here; use {method}."]}, status=405)
    response["Allow"] = f"{method}, OPTIONS"
    return response


@csrf_exempt
def not_found(request: HttpRequest) -> HttpResponse:
    """Any other path under /cds-services, with any method: a JSON 404, not the site's HTML page."""
    return error_response(
        {"path": [f"No CDS Hooks endpoint at {request.path!r}; the services are listed at /cds-services."]},
        status=404,
    )


def cds_endpoint(method: str) -> Callable[[Callable[..., HttpResponse]], Callable[..., HttpResponse]]:
    """CORS (preflight answered before anything else), then the method, then the EHR's JWT."""

    def decorate(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
        authenticated = cds_client_required(view)

        @cds_cors
        @wraps(view)
        def wrapper(request: HttpRequest, *args, **kwargs) -> HttpResponse:
            if request.method != method:
                return _method_not_allowed(request, method)
            return authenticated(request, *args, **kwargs)

        return wrapper

    return decorate


def _service_request[Body: BaseModel](
    request: HttpRequest, service_id: str, schema: type[Body]
) -> tuple[CdsService, Body] | HttpResponse:
    """The CDS service named in the URL and the validated JSON body, or the error response (404, 400).
    (api/views.py parses its bodies alike, but into another error shape, so nothing is shared.)"""
    cds_service = SERVICES.get(service_id)
    if cds_service is None:
        return error_response({"service": [f"No CDS service {service_id!r}."]}, status=404)
    try:
        data = jsonutil.loads(request.body or b"")
    except (ValueError, UnicodeDecodeError) as error:
        return error_response({"body": [f"Malformed JSON: {error}"]})
    try:
        return cds_service, schema.model_validate(data)
    except ValidationError as error:
        return error_response(errors_of(error))


@cds_endpoint("GET")
def discovery(request: HttpRequest) -> HttpResponse:
    return ApiResponse(discovery_document())


@cds_endpoint("POST")
def service(request: HttpRequest, service_id: str) -> HttpResponse:
    parsed = _service_request(request, service_id, HookRequest)
    if isinstance(parsed, HttpResponse):
        return parsed
    cds_service, hook_request = parsed
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


@cds_endpoint("POST")
def feedback(request: HttpRequest, service_id: str) -> HttpResponse:
    parsed = _service_request(request, service_id, FeedbackRequest)
    if isinstance(parsed, HttpResponse):
        return parsed
    cds_service, feedback_request = parsed
    outcome = feedback_record(service=cds_service, request=feedback_request, client=request.cds_client)
    if not outcome.recorded:
        return error_response(outcome.errors)  # nothing recorded
    if outcome.errors:
        return ApiResponse({"recorded": outcome.recorded, "errors": outcome.errors})
    return HttpResponse(status=200)
