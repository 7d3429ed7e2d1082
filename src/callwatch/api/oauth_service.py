"""The OAuth 2.0 token service behind ``/restapi/oauth/token`` and ``/restapi/oauth/revoke``.

Grants (ringcentral-api.md §2.1): ``password`` (``username`` = main number with or without ``+``,
``number*ext``, or an e-mail; optional ``extension``), ``urn:ietf:params:oauth:grant-type:
jwt-bearer`` (``assertion`` = a credential from
:func:`callwatch.store.provisioning.issue_jwt_credential`) and ``refresh_token`` (rotating).

Error mapping (RingCentral codes; our choice where the docs are silent, recorded here):

- client: missing ``client_id`` → 400 invalid_request OAU-101; unknown client or bad secret →
  401 invalid_client OAU-146; grant not enabled for the app → 403 unauthorized_client OAU-112;
  unknown grant → 400 unsupported_grant_type OAU-125;
- resource owner: wrong user/password, bad/revoked/expired JWT, disabled extension →
  400 invalid_grant OAU-140; bad/revoked/expired refresh token → 400 invalid_grant OAU-211;
- a missing required field → 400 invalid_request OAU-101 naming the parameter.

A password login with a main number and no extension logs in the account's first admin
extension, as RingCentral logs in the company's main extension.
"""

from __future__ import annotations

from dataclasses import dataclass

from callwatch.api.errors import OAuthError
from callwatch.api.tokens import IssuedToken, RefreshRejected, TokenIssuer, TokenLifetimes
from callwatch.clock import Clock
from callwatch.store.errors import InvalidRecord
from callwatch.store.jwt_credentials import InvalidJwtCredential, decode_credential
from callwatch.store.numbers import normalize_e164
from callwatch.store.passwords import secret_matches, verify_password
from callwatch.store.provisioning import JWT_BEARER_GRANT
from callwatch.store.repo import App, Extension, Store

MIN_ACCESS_TTL = 600  # SPEC BaseTokenRequest.access_token_ttl minimum
_BAD_CREDENTIALS = "Invalid resource owner credentials"


@dataclass(frozen=True, slots=True, kw_only=True)
class TokenRequest:
    """A parsed token request: form fields plus the client from HTTP Basic or the form."""

    grant_type: str | None
    client_id: str | None
    client_secret: str | None
    username: str | None = None
    password: str | None = None
    extension: str | None = None
    assertion: str | None = None
    refresh_token: str | None = None
    scope: str | None = None
    endpoint_id: str | None = None
    access_token_ttl: str | None = None
    refresh_token_ttl: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class RevokeRequest:
    """A parsed revoke request; the client is optional."""

    token: str | None
    client_id: str | None
    client_secret: str | None


class OAuthService:
    """Authenticates clients and resource owners and issues token pairs."""

    def __init__(
        self,
        *,
        store: Store,
        issuer: TokenIssuer,
        clock: Clock,
        jwt_key: str,
        access_ttl: int,
        refresh_ttl: int,
    ) -> None:
        self._store = store
        self._issuer = issuer
        self._clock = clock
        self._jwt_key = jwt_key
        self._access_ttl = access_ttl
        self._refresh_ttl = refresh_ttl

    def token(self, request: TokenRequest) -> IssuedToken:
        """Run the token endpoint for ``request``.

        Raises:
            OAuthError: per the mapping in the module docstring.
        """
        app = self._client(request.client_id, request.client_secret)
        grant = request.grant_type
        if not grant:
            raise _missing("grant_type")
        if grant not in (*_GRANTS, JWT_BEARER_GRANT):
            raise OAuthError("unsupported_grant_type", "OAU-125", f"Unsupported grant type {grant}")
        if grant not in app.grant_types:
            raise OAuthError(
                "unauthorized_client",
                "OAU-112",
                f"Client is not authorized for grant type {grant}",
                status_code=403,
            )
        if grant == "password":
            return self._password(app, request)
        if grant == "refresh_token":
            return self._refresh(app, request)
        return self._jwt(app, request)

    def revoke(self, request: RevokeRequest) -> None:
        """Revoke the session of ``request.token``; unknown tokens are ignored (RFC 7009 §2.2)."""
        client_id = None
        if request.client_id is not None:
            client_id = self._client(request.client_id, request.client_secret).client_id
        if not request.token:
            raise _missing("token")
        self._issuer.revoke(request.token, client_id=client_id)

    def _client(self, client_id: str | None, secret: str | None) -> App:
        if not client_id:
            raise _missing("client_id")
        app = self._store.apps.get(client_id)
        if app is None or (
            app.client_secret_hash is not None
            and (secret is None or not secret_matches(secret, app.client_secret_hash))
        ):
            raise OAuthError(
                "invalid_client", "OAU-146", "Invalid client credentials", status_code=401
            )
        return app

    def _password(self, app: App, request: TokenRequest) -> IssuedToken:
        if not request.username:
            raise _missing("username")
        if not request.password:
            raise _missing("password")
        ext = self._login_extension(request.username, request.extension)
        if (
            ext is None
            or ext.password_hash is None
            or not verify_password(request.password, ext.password_hash)
        ):
            raise _invalid_grant("OAU-140", _BAD_CREDENTIALS)
        return self._issue(app, ext, request)

    def _jwt(self, app: App, request: TokenRequest) -> IssuedToken:
        if not request.assertion:
            raise _missing("assertion")
        try:
            claims = decode_credential(request.assertion, key=self._jwt_key)
        except InvalidJwtCredential as exc:
            raise _invalid_grant("OAU-140", str(exc)) from exc
        if claims.expires_at is not None and claims.expires_at <= self._now():
            raise _invalid_grant("OAU-140", "JWT credential has expired")
        credential = self._store.credentials.get(claims.jti)
        if credential is None or credential.extension_id != claims.extension_id:
            raise _invalid_grant("OAU-140", "JWT credential is unknown")
        if credential.revoked:
            raise _invalid_grant("OAU-140", "JWT credential has been revoked")
        ext = self._store.extensions.get(credential.extension_id)
        if ext is None:
            raise _invalid_grant("OAU-140", _BAD_CREDENTIALS)
        return self._issue(app, ext, request)

    def _refresh(self, app: App, request: TokenRequest) -> IssuedToken:
        if not request.refresh_token:
            raise _missing("refresh_token")
        lifetimes = self._lifetimes(request)
        try:
            record = self._issuer.refreshable(request.refresh_token, client_id=app.client_id)
            ext = self._store.extensions.get(record.extension_id)
            if ext is None or ext.status != "Enabled":
                raise RefreshRejected("Extension is not enabled")
            return self._issuer.rotate(record, lifetimes=lifetimes)
        except RefreshRejected as exc:
            raise _invalid_grant("OAU-211", str(exc)) from exc

    def _issue(self, app: App, ext: Extension, request: TokenRequest) -> IssuedToken:
        if ext.status != "Enabled":
            raise _invalid_grant("OAU-140", f"Extension is {ext.status}")
        if app.account_id is not None and app.account_id != ext.account_id:
            raise _invalid_grant("OAU-140", _BAD_CREDENTIALS)
        return self._issuer.issue(
            extension=ext,
            client_id=app.client_id,
            scopes=_scopes(app, request.scope),
            lifetimes=self._lifetimes(request),
            endpoint_id=request.endpoint_id,
        )

    def _login_extension(self, username: str, extension: str | None) -> Extension | None:
        user, star, number = username.strip().partition("*")
        ext_number = number if star else (extension or "").strip()
        if "@" in user:
            return self._store.extensions.find_by_email(user)
        try:
            main_number = normalize_e164(user)
        except InvalidRecord:
            return None
        account = self._store.accounts.find_by_main_number(main_number)
        if account is None:
            return None
        if ext_number:
            return self._store.extensions.find_by_number(account.id, ext_number)
        admins = [e for e in self._store.extensions.list_for_account(account.id) if e.is_admin]
        return admins[0] if admins else None

    def _lifetimes(self, request: TokenRequest) -> TokenLifetimes:
        return TokenLifetimes(
            access=_ttl(request.access_token_ttl, self._access_ttl, "access_token_ttl"),
            refresh=_ttl(request.refresh_token_ttl, self._refresh_ttl, "refresh_token_ttl"),
        )

    def _now(self) -> float:
        return self._clock.utcnow().timestamp()


_GRANTS = ("password", "refresh_token")


def _scopes(app: App, requested: str | None) -> tuple[str, ...]:
    if not requested:
        return app.scopes
    wanted = set(requested.split())
    scopes = tuple(scope for scope in app.scopes if scope in wanted)
    if not scopes:
        raise OAuthError(
            "invalid_scope", "OAU-101", "Requested scope is invalid", parameter_name="scope"
        )
    return scopes


def _ttl(value: str | None, maximum: int, parameter: str) -> int:
    """A requested lifetime clamped to ``[min(600, maximum), maximum]``; default ``maximum``."""
    if value is None or value == "":
        return maximum
    try:
        requested = int(value)
    except ValueError as exc:
        raise OAuthError(
            "invalid_request",
            "OAU-101",
            f"Parameter [{parameter}] is invalid",
            parameter_name=parameter,
        ) from exc
    return max(min(MIN_ACCESS_TTL, maximum), min(requested, maximum))


def _missing(parameter: str) -> OAuthError:
    return OAuthError(
        "invalid_request",
        "OAU-101",
        f"Parameter [{parameter}] is missing",
        parameter_name=parameter,
    )


def _invalid_grant(code: str, message: str) -> OAuthError:
    return OAuthError("invalid_grant", code, message)
