"""References and Table 2 studies. Pharmacists read them and may add a reference (it reaches a
clinician only once an approved version cites it); changing or deleting one is for superusers,
because a reference's label and links show on every recommendation that cites it."""

from django.contrib import admin

from anakinra_cds.history_admin import HistoryAdmin
from evidence.models import Reference, Study


@admin.register(Reference)
class ReferenceAdmin(HistoryAdmin):
    list_display = ("__str__", "key", "year", "doi", "pmid")
    search_fields = ("key", "short_label", "authors", "title", "doi", "pmid")
    fieldsets = [
        (None, {"fields": ("key", "letter_ref_number", "short_label")}),
        ("Bibliography", {"fields": ("authors", "title", "journal", "year", "volume", "issue", "pages")}),
        ("Identifiers (only where the source gives them)", {"fields": ("doi", "pmid", "url")}),
        (None, {"fields": ("note",)}),
    ]


@admin.register(Study)
class StudyAdmin(HistoryAdmin):
    list_display = ("table_order", "label", "study_type", "population", "n_patients", "dose_as_reported")
    list_filter = ("population",)
    search_fields = ("label", "product", "dose_as_reported")
    filter_horizontal = ("references",)
