"""Audit events, for reading only: append-only, whoever is looking."""

from django.contrib import admin

from anakinra_cds.history_admin import NulSafeChangelist
from anakinra_cds.history_words import time_words
from audit.models import AuditEvent, action_words, subject_type_words


class _WordsFilter(admin.SimpleListFilter):
    """A filter on a code field whose choices read as words, not codes."""

    words = staticmethod(str)

    def lookups(self, request, model_admin):
        codes = AuditEvent.objects.order_by(self.parameter_name).values_list(self.parameter_name, flat=True).distinct()
        return [(code, self.words(code)) for code in codes]

    def queryset(self, request, queryset):
        return queryset.filter(**{self.parameter_name: self.value()}) if self.value() else queryset


class ActionFilter(_WordsFilter):
    title = "what"
    parameter_name = "action"
    words = staticmethod(action_words)


class SubjectTypeFilter(_WordsFilter):
    title = "about"
    parameter_name = "subject_type"
    words = staticmethod(subject_type_words)


@admin.register(AuditEvent)
class AuditEventAdmin(NulSafeChangelist, admin.ModelAdmin):
    list_display = ("when", "who", "what", "subject", "reason")
    list_filter = (ActionFilter, SubjectTypeFilter)
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
