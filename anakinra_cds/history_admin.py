"""Admin base for models with django-simple-history: field-level history to read, never to revert.

A revert would write an old row back without drafts, two-person approval or test patients, so the
history form is view-only (POST refused), and the history list uses a template without inline
style (our CSP allows none), in plain words: labels, names, minutes, whole values.
"""

from __future__ import annotations

from django.contrib.admin.utils import unquote
from django.contrib.admin.views.main import ERROR_FLAG
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import models
from django.http import Http404, HttpResponseRedirect
from simple_history.admin import SimpleHistoryAdmin
from simple_history.template_utils import HistoricalRecordContextHelper

from anakinra_cds.history_words import delta_words


class PlainWordsHistoryHelper(HistoricalRecordContextHelper):
    """simple_history's change list in plain words (see anakinra_cds.history_words)."""

    def context_for_delta_changes(self, delta):
        return [{"field": label, "old": old, "new": new} for label, old, new in delta_words(self.model, delta)]


class NulSafeChangelist:
    """PostgreSQL refuses NUL characters in text, so a list filter carrying one failed as a 500.
    Answer it as Django answers any other bad filter: the list again, flagged `e=1`."""

    def changelist_view(self, request, extra_context=None):
        if any("\x00" in key or any("\x00" in v for v in values) for key, values in request.GET.lists()):
            return HttpResponseRedirect(f"{request.path}?{ERROR_FLAG}=1")
        return super().changelist_view(request, extra_context)


class HistoryAdmin(NulSafeChangelist, SimpleHistoryAdmin):
    object_history_list_template = "admin/history/object_history_list.html"

    class Media:
        css = {"all": ("css/admin_governance.css",)}

    def history_pk(self, object_id: str):
        """The primary key in a history URL, or 404 (simple_history filters on it unchecked: a 500)."""
        try:
            return self.model._meta.pk.to_python(unquote(object_id))
        except (ValidationError, ValueError, TypeError) as error:
            raise Http404("No such object.") from error

    def history_view(self, request, object_id, extra_context=None):
        self.history_pk(object_id)
        return super().history_view(request, object_id, extra_context)

    def get_historical_record_context_helper(self, request, historical_record):
        return PlainWordsHistoryHelper(self.model, historical_record)

    def revert_disabled(self, request, obj=None) -> bool:
        return True

    def history_form_view(self, request, object_id, version_id, extra_context=None):
        if request.method not in ("GET", "HEAD"):
            raise PermissionDenied("History is read-only.")
        self.history_pk(object_id)
        return super().history_form_view(request, object_id, version_id, extra_context)

    def get_history_queryset(self, request, history_manager, pk_name, object_id):
        # As simple_history's, minus its bare select_related() on models without foreign keys
        # (deprecated in Django 6.1).
        queryset = history_manager.filter(**{pk_name: object_id}).select_related("history_user")
        related = [f.name for f in history_manager.model.tracked_fields if isinstance(f, models.ForeignKey)]
        return queryset.select_related(*related) if related else queryset
