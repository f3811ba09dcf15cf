"""The SMART launch over real HTTP against the test EHR (authlib authorization server, FHIR endpoint):
the authorization request, the token exchange for public and confidential clients, the ID token, the
local account, what is filled into the wizard, the audit, and every refusal."""

from __future__ import annotations

import base64
import hashlib
import json
import time
from decimal import Decimal
from urllib.parse import quote

import pytest
from django.apps import apps
from django.contrib.auth.models import Group
from django.contrib.sessions.models import Session
from django.core import serializers
from django.test import Client
from joserfc.jwk import RSAKey

from accounts.roles import CLINICIAN
from audit.models import AuditEvent
from bedside.wizard import SESSION_KEY, WizardAnswers
from smart.models import EhrUserLink
from smart.session import PATIENT_KEY, SMART_KEY
from tests.ehr_support import ISSUER
from tests.factories import EhrUserLinkFactory, UserFactory
from tests.smart.conftest import CALLBACK
from tests.smart_ehr import EhrUser, LaunchContext
from tests.smart_support import (
    CLIENT_ID,
    PATIENT_ID,
    PRACTITIONER,
    SECRET_ENV,
    authorize,
    ehr_context,
    path_and_query,
    patient_record,
    registration,
    weight_observation,
)

pytestmark = [pytest.mark.integration, pytest.mark.django_db]

V2_SCOPE = (
    "launch openid fhirUser patient/Patient.r "
    "patient/Observation.rs?category=http://terminology.hl7.org/CodeSystem/observation-category|vital-signs "
    "patient/AllergyIntolerance.rs"
)


def _launch(client: Client, ehr, context: LaunchContext | None = None):
    """The EHR opens the launch URL; the browser goes to the EHR's authorization endpoint and back."""
    launch = ehr.launch_create(context or ehr_context())
    started = client.get("/smart/launch", {"iss": ehr.fhir_base, "launch": launch})
    assert started.status_code == 302, started.content
    return client.get(path_and_query(authorize(started["Location"])))


def _refusal(response) -> str:
    text = response.content.decode()
    start = text.index('role="alert">') + len('role="alert">')
    return text[start : text.index("</div>", start)]


def _readings(client: Client) -> dict[str, tuple[str, str, str]]:
    return {r["field"]: (r["status"], r["answer"], r["note"]) for r in client.session[PATIENT_KEY]["readings"]}


# --- The authorization request and the token ---------------------------------------------------------


def test_smart_ehr_launch_sends_the_authorization_request_smart_asks_for(client, smart_ehr):
    launch = smart_ehr.launch_create(ehr_context())

    started = client.get("/smart/launch", {"iss": smart_ehr.fhir_base, "launch": launch})
    done = client.get(path_and_query(authorize(started["Location"])))

    assert done.status_code == 302 and done["Location"] == "/"
    (request,) = smart_ehr.seen_at("/auth/authorize")
    query = request["query"]
    assert {k: v for k, v in query.items() if k not in ("state", "nonce", "code_challenge")} == {
        "response_type": "code",
        "client_id": CLIENT_ID,
        "redirect_uri": CALLBACK,
        "scope": V2_SCOPE,
        "aud": smart_ehr.fhir_base,
        "code_challenge_method": "S256",
        "launch": launch,
    }
    assert len(query["state"]) >= 43 and len(query["nonce"]) >= 43  # 256 random bits each
    (token,) = smart_ehr.seen_at("/auth/token")
    verifier = token["form"]["code_verifier"]
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    assert query["code_challenge"] == challenge


def test_smart_public_client_names_itself_at_the_token_endpoint_without_a_secret(client, smart_ehr):
    _launch(client, smart_ehr)

    (token,) = smart_ehr.seen_at("/auth/token")
    assert (set(token["form"]), token["form"]["client_id"], token["authorization"]) == (
        {"grant_type", "code", "redirect_uri", "code_verifier", "client_id"},
        CLIENT_ID,
        None,
    )


def test_smart_confidential_client_uses_http_basic_with_the_secret_from_the_environment(
    client, smart_ehr, settings, monkeypatch
):
    secret = "s3cr:et/+ with spaces"
    monkeypatch.setenv(SECRET_ENV, secret)
    smart_ehr.client_add(CLIENT_ID, CALLBACK, secret=secret)
    settings.CDS_HOOKS_ISSUERS = registration(smart_ehr, client_type="confidential")

    done = _launch(client, smart_ehr)

    assert done["Location"] == "/"
    (token,) = smart_ehr.seen_at("/auth/token")
    expected = base64.b64encode(f"{CLIENT_ID}:{quote(secret, safe='')}".encode()).decode()
    assert (token["authorization"], "client_id" in token["form"]) == (f"Basic {expected}", False)


def test_smart_confidential_client_with_a_wrong_secret_is_refused_and_audited(client, smart_ehr, settings, monkeypatch):
    monkeypatch.setenv(SECRET_ENV, "not-the-secret")
    smart_ehr.client_add(CLIENT_ID, CALLBACK, secret="the-secret")
    settings.CDS_HOOKS_ISSUERS = registration(smart_ehr, client_type="confidential")

    done = _launch(client, smart_ehr)

    assert done.status_code == 400
    assert _refusal(done) == "The EHR refused to give this app a token: HTTP 401 (invalid_client)."
    (event,) = AuditEvent.objects.all()
    assert (event.action, event.actor, event.subject_id, event.reason) == (
        "smart.launch_refused",
        None,
        ISSUER,
        "The EHR refused to give this app a token: HTTP 401 (invalid_client).",
    )
    assert PATIENT_KEY not in client.session and "_auth_user_id" not in client.session


def test_smart_server_without_v2_scopes_is_asked_v1_scopes(client, smart_ehr):
    smart_ehr.capabilities.remove("permission-v2")

    _launch(client, smart_ehr)

    (request,) = smart_ehr.seen_at("/auth/authorize")
    assert request["query"]["scope"] == (
        "launch openid fhirUser patient/Patient.read patient/Observation.read patient/AllergyIntolerance.read"
    )
    (search,) = smart_ehr.seen_at("/fhir/Observation")
    assert "category" not in search["query"]


def test_smart_standalone_launch_asks_the_ehr_to_choose_the_patient(client, smart_ehr):
    smart_ehr.standalone = ehr_context()

    chooser = client.get("/smart/standalone")
    started = client.get("/smart/standalone", {"iss": smart_ehr.fhir_base})
    done = client.get(path_and_query(authorize(started["Location"])))

    assert chooser.status_code == 200
    assert f"?iss={quote(smart_ehr.fhir_base, safe='')}" in chooser.content.decode()
    (request,) = smart_ehr.seen_at("/auth/authorize")
    assert ("launch" in request["query"], request["query"]["scope"].split()[0]) == (False, "launch/patient")
    assert done["Location"] == "/"
    assert client.session[SESSION_KEY]["answers"]["patient"]["weight_kg"] == "20"


# --- What the wizard gets ----------------------------------------------------------------------------


def test_smart_launch_fills_weight_age_allergy_answer_and_institution(client, smart_ehr):
    _launch(client, smart_ehr)

    answers = WizardAnswers(client.session)
    filled = {name: value for step in answers.data["answers"].values() for name, value in step.items()}
    assert filled == {
        "weight_kg": "20",
        "age_years": "8",
        "ecoli_protein_hypersensitivity": "false",
        "institution": "cnh",
    }
    readings = _readings(client)
    assert {field: status for field, (status, _, _) in readings.items()} == {
        "weight_kg": "filled",
        "age_years": "filled",
        "ecoli_protein_hypersensitivity": "filled",
        "institution": "filled",
    }
    assert readings["weight_kg"][2].endswith(" (1 day ago): the latest body weight.")
    assert readings["age_years"][2].endswith(": 8 years old today.")
    page = client.get("/").content.decode()
    assert '<span class="ehr-patient">Robin Okafor, born ' in page
    assert page.count('class="badge text-bg-success">filled in</span>') == 4


def test_smart_launch_converts_a_weight_in_pounds_exactly(client, smart_ehr):
    smart_ehr.patient_add(patient_record(weight=Decimal("44.092"), weight_code="[lb_av]"))

    _launch(client, smart_ehr)

    status, answer, note = _readings(client)["weight_kg"]
    # 44.092 x 0.45359237 = 19.99979277... kg, to the gram: 20 kg.
    assert (status, answer) == ("filled", "20")
    assert note.endswith(
        "the latest body weight; recorded as 44.092 [lb_av], converted exactly (1 [lb_av] = 0.45359237 kg) and "
        "taken to the gram."
    )


def test_smart_launch_converts_a_weight_in_grams(client, smart_ehr):
    smart_ehr.patient_add(patient_record(weight=20500, weight_code="g"))

    _launch(client, smart_ehr)

    assert _readings(client)["weight_kg"][:2] == ("filled", "20.5")


def test_smart_launch_shows_an_old_weight_and_asks_for_a_current_one(client, smart_ehr):
    smart_ehr.patient_add(patient_record(weight_days_ago=10))

    _launch(client, smart_ehr)

    status, answer, note = _readings(client)["weight_kg"]
    assert (status, answer) == ("ask", "")
    assert note.startswith("From the EHR: the latest body weight, 20 kg, is dated ")
    assert note.endswith(" (10 days ago), older than 7 days. Enter a current weight.")
    assert "weight_kg" not in client.session[SESSION_KEY]["answers"]["patient"]


def test_smart_launch_without_a_recorded_weight_asks_for_it(client, smart_ehr):
    smart_ehr.patient_add(patient_record(weight=None))

    _launch(client, smart_ehr)

    assert _readings(client)["weight_kg"] == (
        "none",
        "",
        "From the EHR: No body weight (LOINC 29463-7) is recorded. Enter the weight.",
    )


def test_smart_launch_reads_every_page_of_the_allergy_list(client, smart_ehr):
    smart_ehr.patient_add(patient_record(allergies=("penicillin", "peanut", "Kineret")))
    smart_ehr.allergy_page_size = 1

    _launch(client, smart_ehr)

    assert len(smart_ehr.seen_at("/fhir/AllergyIntolerance")) == 3
    status, answer, note = _readings(client)["ecoli_protein_hypersensitivity"]
    assert (status, answer) == ("filled", "true")
    assert note.endswith(": current anakinra allergy recorded (“Kineret”).")
    # A recorded hypersensitivity answers the safety screen too: "one or more applies".
    patient_step = client.session[SESSION_KEY]["answers"]["patient"]
    assert (patient_step["ecoli_protein_hypersensitivity"], patient_step["safety_screen"]) == ("true", "some")


def test_smart_launch_allergy_list_that_fails_is_not_read_as_none(client, smart_ehr):
    smart_ehr.fhir_failures["AllergyIntolerance"] = 500

    _launch(client, smart_ehr)

    assert _readings(client)["ecoli_protein_hypersensitivity"] == (
        "unreadable",
        "",
        "The EHR's allergy list could not be read in full (AllergyIntolerance: HTTP 500). Answer it yourself.",
    )
    assert "ecoli_protein_hypersensitivity" not in client.session[SESSION_KEY]["answers"]["patient"]


def test_smart_launch_leaves_an_e_coli_allergy_to_the_clinician(client, smart_ehr):
    smart_ehr.patient_add(patient_record(allergies=("E. coli asparaginase",)))

    _launch(client, smart_ehr)

    status, answer, note = _readings(client)["ecoli_protein_hypersensitivity"]
    assert (status, answer) == ("ask", "")
    assert note.endswith(
        "records “E. coli asparaginase”: whether that is a hypersensitivity to E. coli-derived proteins is yours to "
        "judge. Answer it yourself."
    )


def test_smart_launch_patient_that_cannot_be_read_leaves_the_age_to_the_clinician(client, smart_ehr):
    smart_ehr.fhir_failures["Patient"] = 503

    _launch(client, smart_ehr)

    assert _readings(client)["age_years"] == (
        "unreadable",
        "",
        "The EHR's patient record could not be read (Patient/pat-smart-1: HTTP 503). Enter the age.",
    )
    assert client.session[PATIENT_KEY]["banner_name"] == ""


def test_smart_launch_shows_the_order_drafted_in_the_ehr_from_app_context(client, smart_ehr):
    app_context = json.dumps({"draftOrder": {"id": "d1", "text": "anakinra 100 mg IV every 6 hours"}})

    _launch(client, smart_ehr, ehr_context(app_context=app_context))

    page = client.get("/").content.decode()
    assert "Order drafted in the EHR: <strong>anakinra 100 mg IV every 6 hours</strong>" in page


def test_smart_launch_clears_answers_in_progress_for_another_patient_and_says_so(client, smart_ehr):
    user = UserFactory(role=CLINICIAN)
    client.force_login(user)
    client.post("/", {"weight_kg": "33", "action": "next"})

    _launch(client, smart_ehr)

    assert client.session[PATIENT_KEY]["notes"] == [
        "The wizard's answers in progress were for another patient: they were cleared."
    ]
    assert client.session[SESSION_KEY]["answers"]["patient"]["weight_kg"] == "20"


# --- The local account ---------------------------------------------------------------------------------


def test_smart_create_mapping_makes_one_clinician_account_per_ehr_user(client, smart_ehr):
    _launch(client, smart_ehr)
    _launch(Client(), smart_ehr)

    (link,) = EhrUserLink.objects.all()
    user = link.user
    assert (link.registration, link.fhir_user) == (ISSUER, f"{smart_ehr.fhir_base}/{PRACTITIONER}")
    assert (user.username.startswith("ehr-"), len(user.username), user.has_usable_password()) == (True, 20, False)
    assert (user.first_name, user.last_name, user.is_staff) == ("Dana", "Reyes", False)
    assert list(user.groups.values_list("name", flat=True)) == [CLINICIAN]
    events = AuditEvent.objects.filter(action="smart.launch").order_by("id")
    assert [(e.actor, e.details["account_created"]) for e in events] == [(user, True), (user, False)]
    assert events[0].details == {
        "registration": ISSUER,
        "client_id": CLIENT_ID,
        "fhir_server": smart_ehr.fhir_base,
        "ehr_launch": True,
        "fhir_user": f"{smart_ehr.fhir_base}/{PRACTITIONER}",
        "account_created": True,
    }


def test_smart_configured_mapping_signs_in_the_listed_clinician(client, smart_ehr, settings):
    clinician = UserFactory(username="dr-reyes", role=CLINICIAN)
    users = {f"{smart_ehr.fhir_base}/{PRACTITIONER}": "dr-reyes"}
    settings.CDS_HOOKS_ISSUERS = registration(smart_ehr, user_mapping="configured", users=users)

    done = _launch(client, smart_ehr)

    assert done["Location"] == "/"
    assert int(client.session["_auth_user_id"]) == clinician.pk
    assert EhrUserLink.objects.count() == 0


def test_smart_configured_mapping_refuses_an_unlisted_ehr_user(client, smart_ehr, settings):
    UserFactory(username="dr-reyes", role=CLINICIAN)
    users = {f"{smart_ehr.fhir_base}/Practitioner/someone-else": "dr-reyes"}
    settings.CDS_HOOKS_ISSUERS = registration(smart_ehr, user_mapping="configured", users=users)

    done = _launch(client, smart_ehr)

    assert done.status_code == 400
    assert _refusal(done) == (
        f"Your EHR account ({smart_ehr.fhir_base}/{PRACTITIONER}) is not linked to an account here: ask the "
        "administrator to add it to this EHR&#x27;s SMART registration."
    )
    assert list(AuditEvent.objects.values_list("action", flat=True)) == ["smart.launch_refused"]
    assert "_auth_user_id" not in client.session


def test_smart_configured_mapping_never_signs_in_a_staff_account(client, smart_ehr, settings):
    UserFactory(username="pharm", role="pharmacist")
    settings.CDS_HOOKS_ISSUERS = registration(
        smart_ehr, user_mapping="configured", users={f"{smart_ehr.fhir_base}/{PRACTITIONER}": "pharm"}
    )

    done = _launch(client, smart_ehr)

    assert _refusal(done) == (
        f"The account linked to {smart_ehr.fhir_base}/{PRACTITIONER} is not a clinician&#x27;s: a launch signs in "
        "clinicians only."
    )


def test_smart_created_account_deactivated_later_is_refused(client, smart_ehr):
    link = EhrUserLinkFactory(registration=ISSUER, fhir_user=f"{smart_ehr.fhir_base}/{PRACTITIONER}")
    link.user.is_active = False
    link.user.save()

    done = _launch(client, smart_ehr)

    assert _refusal(done) == f"The account linked to {smart_ehr.fhir_base}/{PRACTITIONER} is deactivated here."


def test_smart_launch_without_a_patient_in_context_is_refused(client, smart_ehr):
    done = _launch(client, smart_ehr, LaunchContext(user=EhrUser(sub="u", fhir_user=PRACTITIONER), patient=None))

    assert _refusal(done) == "The EHR did not say which patient this launch is for."
    assert ("_auth_user_id" in client.session, PATIENT_KEY in client.session) == (False, False)


def test_smart_launch_by_a_patient_user_is_refused(client, smart_ehr):
    done = _launch(client, smart_ehr, ehr_context(fhir_user=f"Patient/{PATIENT_ID}"))

    assert _refusal(done) == "This app is for clinicians: the EHR user is a Patient, not a Practitioner."
    assert EhrUserLink.objects.count() == 0


# --- Refusals ------------------------------------------------------------------------------------------


def test_smart_launch_from_an_unregistered_ehr_calls_nothing(client, smart_ehr):
    response = client.get("/smart/launch", {"iss": "https://elsewhere.example.org/fhir", "launch": "x"})

    assert response.status_code == 400
    assert _refusal(response) == (
        "This EHR (https://elsewhere.example.org/fhir) is not registered with this app: ask the administrator to "
        "register it."
    )
    assert smart_ehr.seen == []


def test_smart_launch_whose_ehr_cannot_be_reached_says_so_and_is_audited(client, settings):
    unreachable = {"client_id": CLIENT_ID, "client_type": "public", "user_mapping": "create"}
    settings.CDS_HOOKS_ISSUERS = {ISSUER: {"smart": {**unreachable, "fhir_servers": ["http://127.0.0.1:9/fhir"]}}}

    response = client.get("/smart/launch", {"iss": "http://127.0.0.1:9/fhir", "launch": "x"})

    assert (response.status_code, _refusal(response)) == (
        502,
        "The EHR&#x27;s SMART configuration could not be reached (ConnectionError).",
    )
    assert list(AuditEvent.objects.values_list("action", "actor_label", "details")) == [
        (
            "smart.launch_refused",
            ISSUER,
            {"registration": ISSUER, "fhir_server": "http://127.0.0.1:9/fhir", "ehr_launch": True},
        )
    ]


def test_smart_ehr_launch_without_launch_context_is_refused(client, smart_ehr):
    response = client.get("/smart/launch", {"iss": smart_ehr.fhir_base})

    assert (response.status_code, _refusal(response)) == (
        400,
        "The EHR&#x27;s launch has no launch context (launch parameter).",
    )


def test_smart_callback_for_a_launch_not_started_here_is_refused(client, smart_ehr):
    launch = smart_ehr.launch_create(ehr_context())
    started = Client().get("/smart/launch", {"iss": smart_ehr.fhir_base, "launch": launch})
    back = authorize(started["Location"])

    response = client.get(path_and_query(back))

    assert response.status_code == 400
    assert _refusal(response).startswith("This sign-in was not started in this browser session")
    assert smart_ehr.seen_at("/auth/token") == []


def test_smart_callback_state_is_used_once(client, smart_ehr):
    launch = smart_ehr.launch_create(ehr_context())
    back = path_and_query(
        authorize(client.get("/smart/launch", {"iss": smart_ehr.fhir_base, "launch": launch})["Location"])
    )

    first, second = client.get(back), client.get(back)

    assert (first.status_code, second.status_code) == (302, 400)
    assert len(smart_ehr.seen_at("/auth/token")) == 1


def test_smart_launch_the_ehr_did_not_authorize_is_refused_and_audited(client, smart_ehr):
    started = client.get("/smart/launch", {"iss": smart_ehr.fhir_base, "launch": "not-a-launch-of-this-ehr"})

    response = client.get(path_and_query(authorize(started["Location"])))

    assert _refusal(response) == "The EHR did not authorize this launch (invalid_request)."
    assert list(AuditEvent.objects.values_list("action", "reason")) == [
        ("smart.launch_refused", "The EHR did not authorize this launch (invalid_request).")
    ]


def test_smart_id_token_signed_with_a_key_the_ehr_does_not_publish_is_refused(client, smart_ehr):
    smart_ehr.published_key = RSAKey.generate_key(2048, parameters={"kid": "ehr-id-token-1", "use": "sig"})

    done = _launch(client, smart_ehr)

    assert _refusal(done) == "The EHR&#x27;s ID token was refused: Signature verification failed."
    assert "_auth_user_id" not in client.session


# --- The patient context: only in the session, and not for long -----------------------------------------


def test_smart_patient_context_ends_with_the_wizards_patient(client, smart_ehr):
    _launch(client, smart_ehr)
    assert PATIENT_KEY in client.session

    session = client.session
    WizardAnswers(session).mark_finished("assessment-id")
    session.save()

    assert PATIENT_KEY not in client.session
    assert client.session.get_expiry_age() == client.session.get_session_cookie_age()
    assert client.session[SMART_KEY] == {"registration": ISSUER}


def test_smart_patient_context_ends_when_the_clinician_starts_a_new_patient(client, smart_ehr):
    _launch(client, smart_ehr)

    assert client.post("/wizard/reset/").status_code == 302

    assert PATIENT_KEY not in client.session


def test_smart_patient_context_ends_at_logout(client, smart_ehr):
    _launch(client, smart_ehr)
    key = client.session.session_key

    client.post("/accounts/logout/")

    assert not Session.objects.filter(session_key=key).exists()
    assert PATIENT_KEY not in client.session


def test_smart_patient_context_and_its_session_expire_within_the_hour_or_with_the_token(client, smart_ehr):
    _launch(client, smart_ehr)
    hour_session = client.session.get_expiry_age()
    smart_ehr.token_lifetime = 600
    short = Client()
    _launch(short, smart_ehr)

    assert 3590 <= hour_session <= 3600
    assert 590 <= short.session.get_expiry_age() <= 600
    assert 590 <= short.session[PATIENT_KEY]["expires_at"] - time.time() <= 600


def test_smart_launch_records_no_patient_in_any_table(client, smart_ehr):
    _launch(client, smart_ehr)
    token = client.session[PATIENT_KEY]["access_token"]

    rows = [
        serializers.serialize("json", model.objects.all())
        for model in apps.get_models()
        if model is not Session and model._meta.managed
    ]

    dumped = "".join(rows)
    assert (PATIENT_ID in dumped, token in dumped, "Okafor" in dumped) == (False, False, False)
    assert AuditEvent.objects.filter(action="smart.launch").count() == 1
    assert Group.objects.get(name=CLINICIAN).user_set.count() == 1


# --- Reading the EHR again -------------------------------------------------------------------------------


def test_smart_read_again_takes_a_weight_recorded_since_and_keeps_the_other_answers(client, smart_ehr):
    smart_ehr.patient_add(patient_record(weight_days_ago=10))
    _launch(client, smart_ehr)
    assert _readings(client)["weight_kg"][:2] == ("ask", "")
    smart_ehr.patients[PATIENT_ID].observations.append(weight_observation(Decimal("21.4"), days_ago=0, obs_id="w2"))

    response = client.post("/smart/reread")

    assert response["Location"] == "/"
    status, answer, note = _readings(client)["weight_kg"]
    assert (status, answer, note.endswith(" (today): the latest body weight.")) == ("filled", "21.4", True)
    answers = client.session[SESSION_KEY]["answers"]
    assert (answers["patient"]["weight_kg"], answers["patient"]["age_years"], answers["patient"]["institution"]) == (
        "21.4",
        "8",
        "cnh",
    )
    assert len(smart_ehr.seen_at("/fhir/Observation")) == 2


def test_smart_read_again_after_the_launch_ended_reads_nothing_and_says_so(client, smart_ehr):
    _launch(client, smart_ehr)
    client.post("/wizard/reset/")
    reads = len(smart_ehr.seen)

    response = client.post("/smart/reread", follow=True)

    assert [str(m) for m in response.context["messages"]] == [
        "Answers cleared: start the new patient below.",
        "The EHR launch has ended (after 60 minutes, or once the result was stored): open the app from the EHR again.",
    ]
    assert len(smart_ehr.seen) == reads


def test_smart_value_changed_by_the_clinician_is_no_longer_labelled_as_the_ehrs(client, smart_ehr):
    _launch(client, smart_ehr)

    typed = {**client.session[SESSION_KEY]["answers"]["patient"], "weight_kg": "21"}
    client.post("/", {**typed, "action": "next"})
    page = client.get("/").content.decode()

    assert page.count("filled in, then changed by you</span>") == 1
    assert page.count('class="badge text-bg-success">filled in</span>') == 3
