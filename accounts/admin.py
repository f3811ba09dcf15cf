"""Admin log-in throttling and API tokens (superusers only: no role holds token permissions)."""

from django.contrib import admin

from accounts.forms import ThrottledAdminAuthenticationForm
from accounts.models import ApiToken
from anakinra_cds.history_admin import NulSafeChangelist

admin.site.login_form = ThrottledAdminAuthenticationForm


@admin.register(ApiToken)
class ApiTokenAdmin(NulSafeChangelist, admin.ModelAdmin):
    list_display = ("name", "user", "key_prefix", "created_at", "revoked_at")
    list_filter = ("revoked_at",)
    list_select_related = ("user",)
    search_fields = ("name", "user__username", "key_prefix")
    fields = ("user", "name", "key_prefix", "created_at", "revoked_at")
    readonly_fields = ("user", "key_prefix", "created_at")

    def has_add_permission(self, request):
        # Keys are made with `manage.py create_api_token`, which shows the key once.
        return False
