"""Audit events, for reading only: append-only, whoever is looking."""

from django.contrib import admin

from anakinra_cds.history_admin import NulSafeChangelist
from anakinra_cds.history_words import time_words
from audit.models import AuditEvent


@admin.register(AuditEvent)
class AuditEventAdmin(NulSafeChangelist, admin.ModelAdmin):
    list_display = ("when", "who", "what", "subject", "reason")
    list_filter = ("action", "subject_type")
    list_select_related = ("actor",)
    search_fields = ("action", "subject_id", "reason", "actor__username", "actor_label")
    date_hierarchy = "created_at"

    @admin.display(description="when", ordering="created_at")
    def when(self, obj):
        return time_words(obj.created_at)

    @admin.display(description="what", ordering="action")
    def what(self, obj):
        return obj.action_words

    @admin.display(description="about")
    def subject(self, obj):
        return obj.subject_words

    @admin.display(description="who", ordering="actor__username")
    def who(self, obj):
        if obj.actor_id:
            return obj.actor.get_full_name() or obj.actor.get_username()
        return obj.actor_label or "system"

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
