from django.http import HttpRequest, JsonResponse
from django.views.decorators.http import require_GET


@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    """Liveness for load balancers; also the trivial JSON view the HTTP benchmark compares against."""
    return JsonResponse({"status": "ok"})
