from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from accounts.views import login_view
from anakinra_cds.views import healthz, readyz

urlpatterns = [
    path("accounts/login/", login_view, name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("api/v1/", include("api.urls")),
    path("", include("cds_hooks.urls")),
    path("", include("smart.urls")),
    path("admin/", admin.site.urls),
    # Answered first by anakinra_cds.middleware.ProbeMiddleware; named here so they can be reversed.
    path("healthz", healthz, name="healthz"),
    path("readyz", readyz, name="readyz"),
    path("", include("bedside.urls")),
]
