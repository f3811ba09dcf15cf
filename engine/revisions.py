"""Which clinical rules an answer was computed under.

Every stored answer records `RULES_REVISION`. A stored answer is never recomputed (it keeps the versions and the
rules it was given under), so an answer from an earlier revision says what differed then, in these words.
"""

from __future__ import annotations

RULES_REVISION = 3

# What an answer computed under an earlier revision did differently from the current one.
EARLIER_RULES = {
    1: (
        "Computed under the app's clinical rules revision 1 (before clinical review round 2). Then capped_by also "
        'named a cap that lowered only the escalation ceiling (now max_escalation_capped_by), so "cap applied" '
        "could stand beside an amount the cap did not change; above_reported_maximum also fired above 400 mg/day, "
        "on a protocol's own doses too (now only above 10 mg/kg/day; above_usual_daily_cap notes 400 mg/day where "
        "no cap is stated); the product label was not cited. The protocol versions it used may since have been "
        "revised (cnh grade 1-2 is now consider; nih's taper goal follows only the severe step). The amounts are "
        "as computed then."
    ),
    2: (
        "Computed under the app's clinical rules revision 2 (before clinical review round 3). Then a cap was "
        "reported (capped_by, max_escalation_capped_by, cap notes) even where the amount shown to 0.1 mg did not "
        'change (cnh at 50.001 kg: "100.002 mg per dose is above the 100 mg/dose maximum"; chop at 40.001 kg: '
        'the escalation ceiling "capped at 400 mg/day"); above_reported_maximum did not name the step it fired '
        "on; a vial-rounding tie named one multiple as the nearest; nih's reason did not say fever or "
        "hypotension was not recorded. The amounts are as computed then."
    ),
}


def rules_note(revision: int | None) -> str:
    """Empty for the current rules; otherwise what the rules of that revision did differently."""
    if revision == RULES_REVISION:
        return ""
    return EARLIER_RULES.get(revision or 1, f"Computed under the app's clinical rules revision {revision}.")
