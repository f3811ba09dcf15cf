from django.urls import path

from bedside import views as bedside_views

# The pages are the bedside's (result and printable order summary); the addresses belong to the assessment.
urlpatterns = [
    path("<uuid:assessment_id>/", bedside_views.assessment_result, name="assessment_result"),
    path("<uuid:assessment_id>/print/", bedside_views.assessment_print, name="assessment_print"),
]
