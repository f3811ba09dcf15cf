from django.urls import path, re_path

from cds_hooks import views

# No trailing slashes: CDS Hooks fixes these paths ({baseUrl}/cds-services/{id}).
urlpatterns = [
    path("cds-services", views.discovery, name="cds_discovery"),
    path("cds-services/<str:service_id>", views.service, name="cds_service"),
    path("cds-services/<str:service_id>/feedback", views.feedback, name="cds_feedback"),
    # Last: any other path under /cds-services answers in the JSON error shape, not the site's HTML 404.
    re_path(r"^cds-services/.*$", views.not_found, name="cds_not_found"),
]
