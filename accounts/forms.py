"""Log-in forms for the site and the admin, throttled after repeated failures.

The throttle is keyed by the typed username, whether or not such a user exists, and says the
same thing either way: it never tells an attacker which usernames are real.
"""

from __future__ import annotations

import math

from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth.forms import AuthenticationForm
from django.core.exceptions import ValidationError
from django.utils import timezone

from accounts.selectors import login_locked_until
from accounts.services import login_failure_record, login_failures_clear

THROTTLED_MESSAGE = (
    "Too many failed log-in attempts with this username. Log-in is paused for it: try again in "
    "%(minutes)s minute%(plural)s, or ask an administrator to unlock it."
)


class ThrottledLoginMixin:
    """Refuse any attempt (even with the right password) while the username is locked."""

    def clean(self):
        username = self.cleaned_data.get("username")
        password = self.cleaned_data.get("password")
        attempted = bool(username and password)
        if attempted:
            locked_until = login_locked_until(username=username)
            if locked_until is not None:
                minutes = max(1, math.ceil((locked_until - timezone.now()).total_seconds() / 60))
                raise ValidationError(
                    THROTTLED_MESSAGE,
                    code="throttled",
                    params={"minutes": minutes, "plural": "" if minutes == 1 else "s"},
                )
        try:
            cleaned_data = super().clean()
        except ValidationError:
            # A right password on an account not allowed here (e.g. a clinician at the admin) is not guessing.
            if attempted and self.user_cache is None:
                login_failure_record(username=username)
            raise
        if attempted:
            login_failures_clear(username=username)
        return cleaned_data


class ThrottledAuthenticationForm(ThrottledLoginMixin, AuthenticationForm):
    pass


class ThrottledAdminAuthenticationForm(ThrottledLoginMixin, AdminAuthenticationForm):
    pass
