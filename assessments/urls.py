from django.urls import path

from assessments import views

urlpatterns = [
    path("<uuid:assessment_id>/print/", views.assessment_print, name="assessment_print"),
]
