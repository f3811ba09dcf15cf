"""Admin base for models with django-simple-history: field-level history to read, never to revert.

A revert would write an old row back without drafts, two-person approval or test patients, so the
history form is view-only (POST refused), and the history list uses a template without inline
style (our CSP allows none).
"""

from __future__ import annotations

from django.core.exceptions import PermissionDenied
from django.db import models
from simple_history.admin import SimpleHistoryAdmin


class HistoryAdmin(SimpleHistoryAdmin):
    object_history_list_template = "admin/history/object_history_list.html"

    class Media:
        css = {"all": ("css/admin_governance.css",)}

    def revert_disabled(self, request, obj=None) -> bool:
        return True

    def history_form_view(self, request, object_id, version_id, extra_context=None):
        if request.method not in ("GET", "HEAD"):
            raise PermissionDenied("History is read-only.")
        return super().history_form_view(request, object_id, version_id, extra_context)

    def get_history_queryset(self, request, history_manager, pk_name, object_id):
        # As simple_history's, minus its bare select_related() on models without foreign keys
        # (deprecated in Django 6.1).
        queryset = history_manager.filter(**{pk_name: object_id}).select_related("history_user")
        related = [f.name for f in history_manager.model.tracked_fields if isinstance(f, models.ForeignKey)]
        return queryset.select_related(*related) if related else queryset
