from django.contrib.auth.views import LoginView

from accounts.forms import ThrottledAuthenticationForm

login_view = LoginView.as_view(authentication_form=ThrottledAuthenticationForm)
