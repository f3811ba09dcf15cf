"""Which local account each EHR user was given (superusers only: no role holds these permissions).
Read-only; deleting a link makes that EHR user's next launch create a new account."""

from django.contrib import admin

from anakinra_cds.history_admin import NulSafeChangelist
from smart.models import EhrUserLink


@admin.register(EhrUserLink)
class EhrUserLinkAdmin(NulSafeChangelist, admin.ModelAdmin):
    list_display = ("fhir_user", "registration", "user", "created_at")
    list_filter = ("registration",)
    list_select_related = ("user",)
    search_fields = ("fhir_user", "user__username")
    readonly_fields = ("registration", "fhir_user", "user", "created_at")

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
