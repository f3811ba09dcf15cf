from django.urls import path, re_path

from api import views
from api.responses import not_found

urlpatterns = [
    path("recommendations", views.recommendations_create, name="api_recommendations"),
    path("assessments/<str:assessment_id>", views.assessment_detail, name="api_assessment_detail"),
    path("assessments/<str:assessment_id>/fhir", views.assessment_fhir, name="api_assessment_fhir"),
    path("institutions", views.institutions_list, name="api_institutions"),
    path("openapi.json", views.openapi, name="api_openapi"),
    # Last: every other path under /api/v1/ answers in the API's JSON error shape.
    re_path(r"^.*$", not_found, name="api_not_found"),
]
