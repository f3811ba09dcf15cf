"""A SMART on FHIR EHR for the tests, on a port of its own: an OAuth 2.0 / OpenID Connect authorization
server built on authlib (the authorization code grant with PKCE S256 required, client_secret_basic or a
public client, ID tokens signed RS256 with `fhirUser`), a FHIR R4 endpoint that checks the bearer token,
its scopes and its patient (authlib's ResourceProtector), its `.well-known/smart-configuration`, and a
chart page that shows the app in an iframe, as an EHR does.

Everything the app does is checked by this server as a real EHR would: a wrong `aud`, `launch`,
`redirect_uri`, PKCE verifier, client secret, or a token used for another patient is refused here (by
authlib where OAuth says so, by the SMART checks below where SMART does). The app's own code has no test
hooks: it only talks HTTP to this server.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

from authlib.common.security import generate_token
from authlib.oauth2 import AuthorizationServer, OAuth2Error, ResourceProtector
from authlib.oauth2.rfc6749 import ClientMixin, OAuth2Payload, OAuth2Request, TokenMixin
from authlib.oauth2.rfc6749.errors import InvalidRequestError, InvalidScopeError
from authlib.oauth2.rfc6749.grants import AuthorizationCodeGrant
from authlib.oauth2.rfc6750 import BearerTokenGenerator, BearerTokenValidator
from authlib.oauth2.rfc7636 import CodeChallenge
from authlib.oidc.core.grants import OpenIDCode
from joserfc.jwk import RSAKey

from anakinra_cds import jsonutil

VITAL_SIGNS = "http://terminology.hl7.org/CodeSystem/observation-category|vital-signs"
OBSERVATION_SCOPES = [
    f"patient/Observation.rs?category={VITAL_SIGNS}",
    f"patient/Observation.r?category={VITAL_SIGNS} patient/Observation.s?category={VITAL_SIGNS}",
    "patient/Observation.rs",
    "patient/Observation.read",
]
PATIENT_SCOPES = ["patient/Patient.r", "patient/Patient.rs", "patient/Patient.read"]
ALLERGY_SCOPES = ["patient/AllergyIntolerance.rs", "patient/AllergyIntolerance.read"]
CODE_LIFETIME = 60


# --- Models (in memory) -----------------------------------------------------------------------------


@dataclass
class Client(ClientMixin):
    client_id: str
    redirect_uris: list[str]
    client_secret: str | None = None  # None: a public client

    def get_client_id(self) -> str:
        return self.client_id

    def get_default_redirect_uri(self) -> str:
        return self.redirect_uris[0]

    def get_allowed_scope(self, scope: str) -> str:
        return scope

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        return redirect_uri in self.redirect_uris

    def check_client_secret(self, client_secret: str) -> bool:
        return self.client_secret is not None and secrets.compare_digest(client_secret, self.client_secret)

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        return method == ("none" if self.client_secret is None else "client_secret_basic")

    def check_response_type(self, response_type: str) -> bool:
        return response_type == "code"

    def check_grant_type(self, grant_type: str) -> bool:
        return grant_type == "authorization_code"


@dataclass(frozen=True)
class EhrUser:
    sub: str
    fhir_user: str  # as the ID token says it: relative ("Practitioner/p1") or absolute
    given_name: str = "Dana"
    family_name: str = "Reyes"


@dataclass(frozen=True)
class LaunchContext:
    user: EhrUser
    patient: str | None  # None: an EHR that gives no patient context
    app_context: str | None = None
    tenant: str | None = None
    need_patient_banner: bool = True


@dataclass
class AuthorizationCode:
    code: str
    client_id: str
    redirect_uri: str
    scope: str
    nonce: str | None
    code_challenge: str
    code_challenge_method: str
    context: LaunchContext
    created_at: float = field(default_factory=time.time)

    def get_redirect_uri(self) -> str:
        return self.redirect_uri

    def get_scope(self) -> str:
        return self.scope

    def get_nonce(self) -> str | None:
        return self.nonce

    def get_auth_time(self) -> int:
        return int(self.created_at)

    def get_acr(self) -> None:
        return None

    def get_amr(self) -> None:
        return None


@dataclass
class Token(TokenMixin):
    access_token: str
    client_id: str
    scope: str
    patient: str
    issued_at: float
    expires_in: int

    def check_client(self, client: Client) -> bool:
        return client.client_id == self.client_id

    def get_scope(self) -> str:
        return self.scope

    def get_expires_in(self) -> int:
        return self.expires_in

    def is_expired(self) -> bool:
        return time.time() > self.issued_at + self.expires_in

    def is_revoked(self) -> bool:
        return False


# --- HTTP requests as authlib sees them ------------------------------------------------------------


class _Payload(OAuth2Payload):
    def __init__(self, values: dict[str, list[str]]) -> None:
        self._values = values

    @property
    def data(self) -> dict[str, str]:
        return {key: values[0] for key, values in self._values.items()}

    @property
    def datalist(self) -> defaultdict[str, list]:
        return defaultdict(list, self._values)


class HttpRequest(OAuth2Request):
    def __init__(self, method: str, uri: str, headers: Any, query: dict[str, list[str]], form: dict[str, list[str]]):
        super().__init__(method, uri, headers=headers)
        self._query = query
        self._form = form
        self.payload = _Payload({**query, **form})

    @property
    def args(self) -> dict[str, str]:
        return {key: values[0] for key, values in self._query.items()}

    @property
    def form(self) -> dict[str, str]:
        return {key: values[0] for key, values in self._form.items()}


# --- The authorization server ------------------------------------------------------------------------


class S256Only(CodeChallenge):
    """PKCE as SMART requires it: always, and S256 only (never `plain`)."""

    SUPPORTED_CODE_CHALLENGE_METHOD = ["S256"]

    def validate_code_challenge(self, grant, redirect_uri):
        data = grant.request.payload.data
        if not data.get("code_challenge") or data.get("code_challenge_method") != "S256":
            raise InvalidRequestError("PKCE with code_challenge_method=S256 is required.")
        return super().validate_code_challenge(grant, redirect_uri)


class SmartCodeGrant(AuthorizationCodeGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = ["client_secret_basic", "none"]

    def save_authorization_code(self, code: str, request: HttpRequest) -> None:
        data = request.payload.data
        self.server.ehr.codes[code] = AuthorizationCode(
            code=code,
            client_id=request.client.client_id,
            redirect_uri=data["redirect_uri"],
            scope=request.scope,
            nonce=data.get("nonce"),
            code_challenge=data["code_challenge"],
            code_challenge_method=data["code_challenge_method"],
            context=request.user,
        )

    def query_authorization_code(self, code: str, client: Client) -> AuthorizationCode | None:
        found = self.server.ehr.codes.get(code)
        if found is None or found.client_id != client.client_id or time.time() - found.created_at > CODE_LIFETIME:
            return None
        return found

    def delete_authorization_code(self, authorization_code: AuthorizationCode) -> None:
        self.server.ehr.codes.pop(authorization_code.code, None)

    def authenticate_user(self, authorization_code: AuthorizationCode) -> LaunchContext:
        return authorization_code.context


class SmartOpenIDCode(OpenIDCode):
    def __init__(self, ehr: TestEhr) -> None:
        super().__init__(require_nonce=False)
        self.ehr = ehr

    def resolve_client_private_key(self, client: Client) -> RSAKey:
        return self.ehr.signing_key

    def get_client_algorithm(self, client: Client) -> str:
        return "RS256"

    def get_encode_header(self, client: Client) -> dict[str, str]:
        return {"alg": "RS256", "kid": self.ehr.signing_key.kid, "typ": "JWT"}

    def get_client_claims(self, client: Client) -> dict[str, Any]:
        return {"iss": self.ehr.issuer, "aud": [client.client_id]}

    def exists_nonce(self, nonce: str, request: HttpRequest) -> bool:
        return any(code.nonce == nonce for code in self.ehr.codes.values())

    def generate_user_info(self, user: LaunchContext, scope: str) -> dict[str, Any]:
        info: dict[str, Any] = {"sub": user.user.sub}
        if "fhirUser" in scope.split():
            info["fhirUser"] = user.user.fhir_user
        return {**info, "given_name": user.user.given_name, "family_name": user.user.family_name}


class _AuthorizationServer(AuthorizationServer):
    def __init__(self, ehr: TestEhr) -> None:
        super().__init__()
        self.ehr = ehr
        self.register_token_generator(
            "default",
            BearerTokenGenerator(
                access_token_generator=lambda **kwargs: generate_token(42),
                expires_generator=lambda client, grant_type: ehr.token_lifetime,
            ),
        )

    def query_client(self, client_id: str) -> Client | None:
        return self.ehr.clients.get(client_id)

    def save_token(self, token: dict[str, Any], request: HttpRequest) -> None:
        context: LaunchContext = request.authorization_code.context
        # SMART launch context beside the token (SMART App Launch, "Launch context arrives with your access_token").
        if context.patient is not None:
            token["patient"] = context.patient
        token["need_patient_banner"] = context.need_patient_banner
        if context.app_context is not None:
            token["appContext"] = context.app_context
        if context.tenant is not None:
            token["tenant"] = context.tenant
        self.ehr.tokens[token["access_token"]] = Token(
            access_token=token["access_token"],
            client_id=request.client.client_id,
            scope=token["scope"],
            patient=context.patient or "",
            issued_at=time.time(),
            expires_in=token["expires_in"],
        )

    def create_oauth2_request(self, request: HttpRequest) -> HttpRequest:
        return request

    def create_json_request(self, request: HttpRequest) -> HttpRequest:
        return request

    def handle_response(self, status: int, body: Any, headers: list[tuple[str, str]]) -> tuple:
        return status, body, headers

    def send_signal(self, name: str, *args: Any, **kwargs: Any) -> None:
        pass


class _TokenValidator(BearerTokenValidator):
    def __init__(self, ehr: TestEhr) -> None:
        super().__init__()
        self.ehr = ehr

    def authenticate_token(self, token_string: str) -> Token | None:
        return self.ehr.tokens.get(token_string)


# --- The EHR -------------------------------------------------------------------------------------------


@dataclass
class PatientRecord:
    resource: dict[str, Any]
    observations: list[dict[str, Any]] = field(default_factory=list)
    allergies: list[dict[str, Any]] = field(default_factory=list)


class TestEhr:
    """One EHR: its authorization server, FHIR endpoint and chart page, served at `url`."""

    __test__ = False  # not a test class for pytest

    def __init__(self) -> None:
        self.url = ""
        self.clients: dict[str, Client] = {}
        self.codes: dict[str, AuthorizationCode] = {}
        self.tokens: dict[str, Token] = {}
        self.launches: dict[str, LaunchContext] = {}
        self.patients: dict[str, PatientRecord] = {}
        self.standalone: LaunchContext | None = None  # who signs in, and the patient picked, at a standalone launch
        self.app_launch_url = ""  # the app's registered launch URL, for the chart page
        self.capabilities = [
            "launch-ehr",
            "launch-standalone",
            "client-public",
            "client-confidential-symmetric",
            "context-ehr-patient",
            "context-standalone-patient",
            "sso-openid-connect",
            "permission-patient",
            "permission-v2",
            "permission-v1",
        ]
        self.token_lifetime = 3600
        self.allergy_page_size = 50
        self.fhir_failures: dict[str, int] = {}  # resource type -> HTTP status to answer instead
        self.seen: list[dict[str, Any]] = []
        self.signing_key = RSAKey.generate_key(2048, parameters={"kid": "ehr-id-token-1", "use": "sig", "alg": "RS256"})
        self.published_key: RSAKey | None = None  # what /auth/jwks publishes instead (a key swap), when set
        self.server = _AuthorizationServer(self)
        self.server.register_grant(SmartCodeGrant, [S256Only(required=True), SmartOpenIDCode(self)])
        self.resources = ResourceProtector()
        self.resources.register_token_validator(_TokenValidator(self))

    # --- set-up by tests ---

    @property
    def fhir_base(self) -> str:
        return f"{self.url}/fhir"

    @property
    def issuer(self) -> str:
        return f"{self.url}/auth"

    @property
    def origin(self) -> str:
        return self.url

    def client_add(self, client_id: str, redirect_uri: str, *, secret: str | None = None) -> None:
        self.clients[client_id] = Client(client_id=client_id, redirect_uris=[redirect_uri], client_secret=secret)

    def patient_add(self, record: PatientRecord) -> None:
        self.patients[record.resource["id"]] = record

    def launch_create(self, context: LaunchContext) -> str:
        launch = secrets.token_urlsafe(12)
        self.launches[launch] = context
        return launch

    def app_url(self, launch: str) -> str:
        return f"{self.app_launch_url}?{urlencode({'iss': self.fhir_base, 'launch': launch})}"

    def chart_url(self, launch: str) -> str:
        return f"{self.url}/ehr/chart?{urlencode({'launch': launch})}"

    def seen_at(self, path: str) -> list[dict[str, Any]]:
        return [request for request in self.seen if request["path"] == path]

    # --- HTTP ---

    def handle(self, request: HttpRequest, path: str) -> tuple[int, Any, list[tuple[str, str]]]:
        if path == "/fhir/.well-known/smart-configuration":
            return 200, self._smart_configuration(), []
        if path == "/auth/.well-known/openid-configuration":
            return 200, {**self._smart_configuration(), "subject_types_supported": ["public"]}, []
        if path == "/auth/jwks":
            return 200, {"keys": [(self.published_key or self.signing_key).as_dict(private=False)]}, []
        if path == "/auth/authorize":
            return self._authorize(request)
        if path == "/auth/token" and request.method == "POST":
            status, body, headers = self.server.create_token_response(request)
            return status, body, headers
        if path.startswith("/fhir/"):
            return self._fhir(request, path.removeprefix("/fhir/"))
        if path == "/ehr/chart":
            launch = request.args.get("launch", "")
            page = (
                '<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Test EHR chart</title>'
                '<link rel="icon" href="data:,"></head><body><main><h1>Test EHR: patient chart</h1>'
                f'<iframe id="smart-app" title="Anakinra CDS" src="{self.app_url(launch)}" width="1100" height="1400">'
                "</iframe></main></body></html>"
            )
            return 200, page, [("Content-Type", "text/html; charset=utf-8")]
        return 404, {"resourceType": "OperationOutcome", "issue": [{"severity": "error", "code": "not-found"}]}, []

    def _smart_configuration(self) -> dict[str, Any]:
        return {
            "issuer": self.issuer,
            "jwks_uri": f"{self.issuer}/jwks",
            "authorization_endpoint": f"{self.issuer}/authorize",
            "token_endpoint": f"{self.issuer}/token",
            "token_endpoint_auth_methods_supported": ["client_secret_basic", "none"],
            "grant_types_supported": ["authorization_code"],
            "response_types_supported": ["code"],
            "scopes_supported": ["openid", "fhirUser", "launch", "launch/patient", "patient/*.rs"],
            "code_challenge_methods_supported": ["S256"],
            "capabilities": list(self.capabilities),
        }

    def _authorize(self, request: HttpRequest) -> tuple[int, Any, list[tuple[str, str]]]:
        """The EHR's authorization endpoint. The EHR user is signed in already (the launch carries who and
        which patient; a standalone launch signs in `standalone` and picks its patient), so it approves."""
        data = request.payload.data
        scope = (data.get("scope") or "").split()
        try:
            if data.get("aud", "").rstrip("/") != self.fhir_base:
                raise InvalidRequestError("'aud' must be this EHR's FHIR base URL.")
            if "launch" in scope:
                context = self.launches.get(data.get("launch", ""))
                if context is None:
                    raise InvalidRequestError("Unknown 'launch'.")
            elif "launch/patient" in scope and self.standalone is not None:
                context = self.standalone
            else:
                raise InvalidScopeError("Ask for 'launch' (EHR launch) or 'launch/patient' (standalone).")
            grant = self.server.get_consent_grant(request=request, end_user=context)
        except OAuth2Error as error:
            if error.redirect_uri or not isinstance(error, InvalidRequestError | InvalidScopeError):
                return self.server.handle_error_response(request, error)
            redirect_uri = data.get("redirect_uri", "")
            client = self.clients.get(data.get("client_id", ""))
            if client is None or not client.check_redirect_uri(redirect_uri):
                return 400, {"error": error.error, "error_description": error.description}, []
            query = urlencode({"error": error.error, "state": data.get("state", "")})
            return 302, "", [("Location", f"{redirect_uri}?{query}")]
        return self.server.create_authorization_response(request=request, grant_user=context, grant=grant)

    def _fhir(self, request: HttpRequest, path: str) -> tuple[int, Any, list[tuple[str, str]]]:
        resource_type, _, resource_id = path.partition("/")
        scopes = {"Patient": PATIENT_SCOPES, "Observation": OBSERVATION_SCOPES, "AllergyIntolerance": ALLERGY_SCOPES}
        if resource_type not in scopes:
            return 404, _outcome("not-supported"), []
        try:
            token = self.resources.validate_request(scopes[resource_type], request)
        except OAuth2Error as error:
            return error.status_code, _outcome("security"), []
        if resource_type in self.fhir_failures:
            return self.fhir_failures[resource_type], _outcome("exception"), []
        patient_id = resource_id if resource_type == "Patient" else request.args.get("patient", "")
        if patient_id != token.patient:
            return 403, _outcome("forbidden"), []  # the token is for its own patient only
        record = self.patients.get(patient_id)
        if record is None:
            return 404, _outcome("not-found"), []
        if resource_type == "Patient":
            return 200, record.resource, []
        if resource_type == "Observation":
            return 200, self._observations(request, record), []
        return 200, self._allergies(request, record), []

    def _observations(self, request: HttpRequest, record: PatientRecord) -> dict[str, Any]:
        args = request.args
        system, _, code = args.get("code", "").partition("|")
        found = [
            o
            for o in record.observations
            if not code or any(c.get("system") == system and c.get("code") == code for c in o["code"]["coding"])
        ]
        if "category" in args:
            cat_system, _, cat_code = args["category"].partition("|")
            found = [
                o
                for o in found
                if any(
                    c.get("system") == cat_system and c.get("code") == cat_code
                    for cat in o.get("category", [])
                    for c in cat.get("coding", [])
                )
            ]
        if args.get("_sort") == "-date":
            found.sort(key=lambda o: o.get("effectiveDateTime", ""), reverse=True)
        return _searchset(found[: int(args.get("_count", "50"))], total=len(found))

    def _allergies(self, request: HttpRequest, record: PatientRecord) -> dict[str, Any]:
        page = int(request.args.get("_page", "1"))
        size = self.allergy_page_size
        entries = record.allergies[(page - 1) * size : page * size]
        bundle = _searchset(entries, total=len(record.allergies))
        if page * size < len(record.allergies):
            query = urlencode({"patient": request.args["patient"], "_page": page + 1})
            bundle["link"] = [{"relation": "next", "url": f"{self.fhir_base}/AllergyIntolerance?{query}"}]
        return bundle


def _outcome(code: str) -> dict[str, Any]:
    return {"resourceType": "OperationOutcome", "issue": [{"severity": "error", "code": code}]}


def _searchset(resources: list[dict[str, Any]], *, total: int) -> dict[str, Any]:
    return {
        "resourceType": "Bundle",
        "type": "searchset",
        "total": total,
        "entry": [{"resource": r, "search": {"mode": "match"}} for r in resources],
    }


def _handler(ehr: TestEhr) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def _serve(self) -> None:
            parts = urlsplit(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length).decode() if length else ""
            query = parse_qs(parts.query, keep_blank_values=True)
            form = parse_qs(body, keep_blank_values=True) if self.command == "POST" else {}
            uri = f"{ehr.url}{self.path}"
            request = HttpRequest(self.command, uri, self.headers, query, form)
            ehr.seen.append(
                {
                    "method": self.command,
                    "path": parts.path,
                    "query": {k: v[0] for k, v in query.items()},
                    "form": {k: v[0] for k, v in form.items()},
                    "authorization": self.headers.get("Authorization"),
                }
            )
            status, payload, headers = ehr.handle(request, parts.path)
            content_type = dict(headers).get("Content-Type")
            if isinstance(payload, dict):
                data = jsonutil.dumps(payload).encode()
                content_type = content_type or (
                    "application/fhir+json" if parts.path.startswith("/fhir/") else "application/json"
                )
            else:
                data = str(payload).encode()
            self.send_response(status)
            for name, value in headers:
                if name != "Content-Type":
                    self.send_header(name, value)
            if content_type:
                self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = _serve
        do_POST = _serve

        def log_message(self, *args: Any) -> None:
            pass

    return Handler


def start_ehr(*, host: str = "127.0.0.1") -> tuple[TestEhr, ThreadingHTTPServer]:
    """The EHR on a free port of `host` (127.0.0.1: another site than the app's `localhost`)."""
    ehr = TestEhr()
    httpd = ThreadingHTTPServer((host, 0), _handler(ehr))
    ehr.url = f"http://{host}:{httpd.server_address[1]}"
    threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    return ehr, httpd
