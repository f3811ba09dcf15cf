from django.urls import path

from api import views

urlpatterns = [
    path("recommendations", views.recommendations_create, name="api_recommendations"),
    path("assessments/<str:assessment_id>", views.assessment_detail, name="api_assessment_detail"),
    path("assessments/<str:assessment_id>/fhir", views.assessment_fhir, name="api_assessment_fhir"),
    path("institutions", views.institutions_list, name="api_institutions"),
    path("openapi.json", views.openapi, name="api_openapi"),
]
