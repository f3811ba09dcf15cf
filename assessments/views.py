from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import render

from assessments.selectors import assessment_get


@login_required
def assessment_print(request, assessment_id):
    assessment = assessment_get(assessment_id=assessment_id)
    if assessment is None:
        raise Http404("No assessment with this id.")
    return render(request, "assessments/print.html", {"assessment": assessment})
