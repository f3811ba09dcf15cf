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
    list_display = (
        "table_order",
        "label",
        "study_type",
        "population",
        "n_patients",
        "dose_as_reported",
        "regimen_shown_with",
    )
    list_filter = ("population",)
    list_select_related = ("regimen_protocol__institution",)
    search_fields = ("label", "product", "dose_as_reported")
    filter_horizontal = ("references",)
    fieldsets = [
        (
            None,
            {
                "fields": (
                    "key",
                    "table_order",
                    ("label", "label_as_printed"),
                    ("study_type", "population"),
                    "population_summary",
                    ("n_patients", "product"),
                    "anakinra_use",
                    "dose_as_reported",
                    "response",
                    ("addresses_crs", "addresses_icans", "addresses_carhlh"),
                    "references",
                )
            },
        ),
        (
            "Regimen as data",
            {
                "description": (
                    "The regimen this study used, for the center whose own trial it is: that center's result "
                    "and printout work it out for the patient's weight, labelled as literature and never as "
                    "an order line. The API, CDS Hooks and FHIR answers carry protocol steps only. Fill in "
                    "every field, or none."
                ),
                "fields": (
                    "regimen_protocol",
                    "regimen_dose_basis",
                    ("regimen_amount_low", "regimen_amount_high"),
                    "regimen_interval_hours",
                    ("regimen_route_iv", "regimen_route_sc"),
                ),
            },
        ),
    ]

    @admin.display(description="regimen shown with")
    def regimen_shown_with(self, study: Study) -> str:
        protocol = study.regimen_protocol
        return protocol.institution.slug if protocol is not None and study.has_regimen else "-"
