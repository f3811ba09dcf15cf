from django.urls import path

from bedside import views

urlpatterns = [
    path("", views.wizard_home, name="home"),
    path("start/", views.wizard_start, name="wizard_start"),
    path("wizard/reset/", views.wizard_reset, name="wizard_reset"),
    path("wizard/from/<uuid:assessment_id>/", views.wizard_change_answers, name="wizard_change_answers"),
    path("wizard/<slug:slug>/", views.wizard_step, name="wizard_step"),
    path("evidence/", views.evidence_list, name="evidence_list"),
    # A stored assessment's pages (result and printable order summary): rendered by the bedside's views.
    path("assessments/<uuid:assessment_id>/", views.assessment_result, name="assessment_result"),
    path("assessments/<uuid:assessment_id>/print/", views.assessment_print, name="assessment_print"),
    path("protocols/", views.protocol_list, name="protocol_list"),
    path("protocols/<slug:slug>/", views.protocol_detail_view, name="protocol_detail"),
    path(
        "protocols/<slug:slug>/versions/<int:version_id>/preview/",
        views.protocol_version_preview,
        name="protocol_version_preview",
    ),
]
