from typing import Any

from django.contrib.auth.views import LoginView

from accounts.forms import ThrottledAuthenticationForm
from accounts.middleware import ENDED, ENDED_ON_A_FORM, SESSION_ENDED


class SiteLoginView(LoginView):
    authentication_form = ThrottledAuthenticationForm

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        """`session_ended`: sent here by accounts.middleware.SessionEndedMiddleware (the page says why)."""
        context = super().get_context_data(**kwargs)
        ended = self.request.GET.get(SESSION_ENDED, "")
        context["session_ended"] = ended if ended in (ENDED, ENDED_ON_A_FORM) else ""
        return context


login_view = SiteLoginView.as_view()
