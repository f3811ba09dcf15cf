"""A stand-in EHR for CDS Hooks tests: signing keys, JWTs, hook request bodies, and a local HTTP server
standing in for the EHR's FHIR server and JWK Set URL (a remote third party, so a local server is fair)."""

from __future__ import annotations

import base64
import json
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

from anakinra_cds import jsonutil

ISSUER = "https://ehr.example.org"
CLIENT_ID = "anakinra-cds-client"
PATIENT_ID = "pat-123"
DRAFT_ID = "draft-anakinra-1"
IV = {"system": "http://snomed.info/sct", "code": "47625008", "display": "Intravenous route"}
SC = {"system": "http://snomed.info/sct", "code": "34206005", "display": "Subcutaneous route"}
ORDER_SELECT_PATH = "/cds-services/anakinra-order-select"
ORDER_SIGN_PATH = "/cds-services/anakinra-order-sign"


@dataclass
class SigningKey:
    """A private key with its public JWK (kid, alg)."""

    private: Any
    kid: str
    alg: str

    def public_jwk(self) -> dict[str, Any]:
        algorithm = ECAlgorithm if self.alg.startswith("ES") else RSAAlgorithm
        jwk = json.loads(algorithm.to_jwk(self.private.public_key()))
        return {**jwk, "kid": self.kid, "alg": self.alg, "use": "sig"}

    def jwks(self) -> dict[str, Any]:
        return {"keys": [self.public_jwk()]}


def ec_key(kid: str = "ec-1") -> SigningKey:
    return SigningKey(private=ec.generate_private_key(ec.SECP384R1()), kid=kid, alg="ES384")


def rsa_key(kid: str = "rsa-1") -> SigningKey:
    return SigningKey(private=rsa.generate_private_key(public_exponent=65537, key_size=2048), kid=kid, alg="RS384")


def claims(
    *,
    aud: str,
    iss: str = ISSUER,
    lifetime: int = 60,
    iat: int | None = None,
    jti: str | None = None,
    tenant: str | None = "tenant-1",
) -> dict:
    """The EHR's JWT claims; `tenant` None leaves the (optional) claim out."""
    issued = int(time.time()) if iat is None else iat
    payload = {
        "iss": iss,
        "sub": CLIENT_ID,
        "aud": aud,
        "exp": issued + lifetime,
        "iat": issued,
        "jti": jti or str(uuid.uuid4()),
    }
    if tenant is not None:
        payload["tenant"] = tenant
    return payload


def sign(key: SigningKey, payload: dict, **headers: Any) -> str:
    return jwt.encode(payload, key.private, algorithm=key.alg, headers={"kid": key.kid, "typ": "JWT", **headers})


def _b64(data: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def unsigned_token(payload: dict, kid: str) -> str:
    """`alg: none`: a header and a payload, no signature."""
    return f"{_b64({'alg': 'none', 'typ': 'JWT', 'kid': kid})}.{_b64(payload)}."


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


# --- FHIR content the EHR sends ---------------------------------------------------------------------


def recent(*, days: int = 1) -> str:
    """A FHIR instant `days` ago: a weight within CDS_HOOKS_WEIGHT_MAX_AGE_DAYS whenever the tests run."""
    return (datetime.now(UTC) - timedelta(days=days)).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def weight_bundle(value: Any = Decimal("20"), *, code: str = "kg", when: str | None = None) -> dict:
    when = recent() if when is None else when
    return {
        "resourceType": "Bundle",
        "type": "searchset",
        "entry": [
            {
                "resource": {
                    "resourceType": "Observation",
                    "id": "weight-1",
                    "status": "final",
                    "code": {"coding": [{"system": "http://loinc.org", "code": "29463-7", "display": "Body weight"}]},
                    "effectiveDateTime": when,
                    "valueQuantity": {
                        "value": value,
                        "unit": code,
                        "system": "http://unitsofmeasure.org",
                        "code": code,
                    },
                }
            }
        ],
    }


def patient(birth_date: str = "2018-03-01") -> dict:
    return {"resourceType": "Patient", "id": PATIENT_ID, "birthDate": birth_date}


def allergy_bundle(*names: str) -> dict:
    return {
        "resourceType": "Bundle",
        "type": "searchset",
        "entry": [
            {
                "resource": {
                    "resourceType": "AllergyIntolerance",
                    "clinicalStatus": {
                        "coding": [
                            {
                                "system": "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical",
                                "code": "active",
                            }
                        ]
                    },
                    "code": {"text": name},
                    "patient": {"reference": f"Patient/{PATIENT_ID}"},
                }
            }
            for name in names
        ],
    }


def dose_rate(value: Any, unit: str, rate_type: str | None = None) -> dict:
    """One doseAndRate entry: a UCUM doseQuantity, typed `ordered` or `calculated` when asked."""
    item: dict[str, Any] = {
        "doseQuantity": {"value": value, "unit": unit, "system": "http://unitsofmeasure.org", "code": unit}
    }
    if rate_type is not None:
        item["type"] = {
            "coding": [{"system": "http://terminology.hl7.org/CodeSystem/dose-rate-type", "code": rate_type}]
        }
    return item


def anakinra_draft(
    dose: Any = Decimal("100"),
    *,
    unit: str = "mg",
    route: dict | None = IV,
    every_hours: int | None = 6,
    draft_id: str = DRAFT_ID,
    dose_and_rate: list[dict] | None = None,
) -> dict:
    dosage: dict[str, Any] = {"text": "as drafted"}
    if every_hours is not None:
        dosage["timing"] = {
            "repeat": {
                "boundsPeriod": {"start": "2026-11-23"},
                "frequency": 1,
                "period": every_hours,
                "periodUnit": "h",
            }
        }
    if route is not None:
        dosage["route"] = {"coding": [route]}
    if dose_and_rate is not None:
        dosage["doseAndRate"] = dose_and_rate
    elif dose is not None:
        dosage["doseAndRate"] = [dose_rate(dose, unit)]
    return {
        "resourceType": "MedicationRequest",
        "id": draft_id,
        "status": "draft",
        "intent": "order",
        "text": {"status": "generated", "div": '<div xmlns="http://www.w3.org/1999/xhtml">as drafted</div>'},
        "medicationCodeableConcept": {"text": "Anakinra 100 mg/0.67 mL injection"},
        "subject": {"reference": f"Patient/{PATIENT_ID}"},
        "dosageInstruction": [dosage],
    }


def other_draft() -> dict:
    return {
        "resourceType": "MedicationRequest",
        "id": "draft-other",
        "status": "draft",
        "intent": "order",
        "medicationCodeableConcept": {"text": "tocilizumab"},
        "subject": {"reference": f"Patient/{PATIENT_ID}"},
    }


def hook_body(
    *drafts: dict,
    hook: str = "order-select",
    prefetch: dict | None = None,
    fhir_server: str | None = None,
    selections: list[str] | None = None,
) -> dict:
    drafts = drafts or (anakinra_draft(),)
    context: dict[str, Any] = {
        "userId": "Practitioner/example",
        "patientId": PATIENT_ID,
        "draftOrders": {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": d} for d in drafts]},
    }
    if hook == "order-select":
        context["selections"] = (
            selections if selections is not None else [f"MedicationRequest/{d['id']}" for d in drafts]
        )
    body: dict[str, Any] = {"hook": hook, "hookInstance": str(uuid.uuid4()), "context": context}
    if prefetch is not None:
        body["prefetch"] = prefetch
    if fhir_server is not None:
        body["fhirServer"] = fhir_server
        body["fhirAuthorization"] = {
            "access_token": "fhir-access-token",
            "token_type": "Bearer",
            "expires_in": 300,
            "scope": "patient/Observation.read patient/Patient.read patient/AllergyIntolerance.read",
            "subject": CLIENT_ID,
        }
    return body


def full_prefetch(weight: dict | None = None) -> dict:
    return {"patient": patient(), "weight": weight or weight_bundle(), "allergies": allergy_bundle()}


def body_json(data: Any) -> str:
    return jsonutil.dumps(data)


# --- The EHR's servers --------------------------------------------------------------------------------


@dataclass
class FakeEhrServer:
    """Serves JSON by path (query ignored for routing) and records every request it gets."""

    routes: dict[str, tuple[int, Any]] = field(default_factory=dict)
    requests: list[dict[str, Any]] = field(default_factory=list)
    url: str = ""

    def handler(self):
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                parts = urlsplit(self.path)
                server.requests.append(
                    {
                        "path": parts.path,
                        "query": dict(parse_qsl(parts.query)),
                        "authorization": self.headers.get("Authorization"),
                    }
                )
                status, payload = server.routes.get(parts.path, (404, {"resourceType": "OperationOutcome"}))
                body = jsonutil.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/fhir+json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        return Handler


def start_server() -> tuple[FakeEhrServer, ThreadingHTTPServer]:
    fake = FakeEhrServer()
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), fake.handler())
    fake.url = f"http://127.0.0.1:{httpd.server_address[1]}"
    threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    return fake, httpd
