from django.urls import path

from smart import views

urlpatterns = [
    path("smart/launch", views.ehr_launch, name="smart_launch"),
    path("smart/standalone", views.standalone_launch, name="smart_standalone"),
    path("smart/callback", views.callback, name="smart_callback"),
    path("smart/reread", views.reread, name="smart_reread"),
]
