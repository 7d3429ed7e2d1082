"""Tests for callwatch.sip.auth: digest parsing, RFC vectors, RingCentral SDK shapes, verify."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import re
from dataclasses import replace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from callwatch.sip.auth import (
    AuthResult,
    DigestAuthenticator,
    DigestChallenge,
    DigestCredentials,
    build_credentials,
    compute_ha1,
)
from callwatch.sip.errors import ParseError

DOMAIN = "sip.ringcentral.com"
AUTH_ID = "802396666666"
PASSWORD = "s3cret-Pa55"
SECRET = b"0123456789abcdef0123456789abcdef"
T0 = 1000.0
CREDS_HEAD = 'Digest username="u", realm="r", nonce="n", uri="u", response="0"'


def make_auth(**kwargs: object) -> DigestAuthenticator:
    options: dict[str, object] = {"realm": DOMAIN, "secret": SECRET, "nonce_lifetime": 60.0}
    options.update(kwargs)
    return DigestAuthenticator(**options)  # type: ignore[arg-type]


def md5(text: str) -> str:
    return hashlib.md5(text.encode()).hexdigest()


def sdk_authorization(
    nonce: str, *, quoted_algorithm: bool = True, password: str = PASSWORD
) -> str:
    """What ringcentral-softphone (utils generateAuthorization) sends, per design doc §6.2/§6.3."""
    ha1 = md5(f"{AUTH_ID}:{DOMAIN}:{password}")
    ha2 = md5(f"REGISTER:sip:{DOMAIN}")
    response = md5(f"{ha1}:{nonce}:{ha2}")
    algorithm = '"MD5"' if quoted_algorithm else "MD5"
    return (
        f'Digest algorithm={algorithm}, username="{AUTH_ID}", realm="{DOMAIN}", '
        f'nonce="{nonce}", uri="sip:{DOMAIN}", response="{response}"'
    )


class TestParseChallenge:
    def test_rfc3261_example(self) -> None:
        value = (
            'Digest realm="atlanta.com", domain="sip:boxesbybob.com", qop="auth", '
            'nonce="f84f1cec41e6cbe5aea9c8e88d359", opaque="", stale=FALSE, algorithm=MD5'
        )
        assert DigestChallenge.parse(value) == DigestChallenge(
            realm="atlanta.com",
            nonce="f84f1cec41e6cbe5aea9c8e88d359",
            algorithm="MD5",
            qop=("auth",),
            opaque="",
            stale=False,
            domain=("sip:boxesbybob.com",),
        )

    def test_scheme_case_order_and_defaults(self) -> None:
        challenge = DigestChallenge.parse('digest nonce="n",realm="r"')
        assert challenge == DigestChallenge(realm="r", nonce="n")

    def test_quoted_values_with_escapes_commas_and_spaces(self) -> None:
        value = r'DIGEST  realm = "a \"b\", c\\d" ,nonce="x, y z",qop="auth, auth-int",stale=TRUE'
        challenge = DigestChallenge.parse(value)
        assert challenge.realm == 'a "b", c\\d'
        assert challenge.nonce == "x, y z"
        assert challenge.qop == ("auth", "auth-int")
        assert challenge.stale is True

    def test_algorithm_quoted_or_bare_is_canonicalised(self) -> None:
        assert DigestChallenge.parse(
            'Digest realm="r", nonce="n", algorithm="sha-256"'
        ).algorithm == ("SHA-256")
        assert DigestChallenge.parse("Digest realm=r, nonce=n, algorithm=md5-SESS").algorithm == (
            "MD5-sess"
        )
        assert DigestChallenge.parse("Digest realm=r, nonce=n, algorithm=FOO").algorithm == "FOO"

    def test_unknown_parameters_are_ignored(self) -> None:
        value = 'Digest realm="r", charset=UTF-8, userhash=false, nonce="n"'
        assert DigestChallenge.parse(value) == DigestChallenge(realm="r", nonce="n")

    @pytest.mark.parametrize(
        ("value", "message"),
        [
            ("", "missing authentication scheme in challenge ''"),
            ('Basic realm="r"', "unsupported authentication scheme 'Basic'"),
            ("Digest", "Digest challenge has no parameters"),
            ("Digest   ", "Digest challenge has no parameters"),
            ('Digest nonce="n"', "Digest challenge has no realm"),
            ('Digest realm="r"', "Digest challenge has no nonce"),
            (
                'Digest realm="r", nonce="n", realm="s"',
                "duplicate parameter 'realm' in Digest challenge",
            ),
            ('Digest realm="r" nonce="n"', "expected ',' at offset 17 in Digest challenge"),
            (
                'Digest realm="r", nonce="n",',
                "malformed parameter at offset 28 in Digest challenge",
            ),
            ('Digest realm="r, nonce="n"', "expected ',' at offset 24 in Digest challenge"),
            ('Digest realm="unterminated', "malformed parameter at offset 7 in Digest challenge"),
            (
                'Digest realm="a\x00b", nonce="n"',
                "malformed parameter at offset 7 in Digest challenge",
            ),
            (
                "Digest realm=r, nonce=n, stale=maybe",
                "Digest stale must be true or false, got 'maybe'",
            ),
            ("Digest realm=" + "x" * 5000, "Digest challenge longer than 4096 characters"),
            ("Digest realm=\ud800, nonce=n", "Digest challenge is not valid Unicode text"),
        ],
    )
    def test_errors(self, value: str, message: str) -> None:
        with pytest.raises(ParseError) as info:
            DigestChallenge.parse(value)
        assert str(info.value) == message
        assert info.value.status_hint == 400


class TestSerializeChallenge:
    def test_exact_shape_realm_first(self) -> None:
        challenge = DigestChallenge(realm=DOMAIN, nonce="abc/+=", qop=("auth",))
        expected = f'Digest realm="{DOMAIN}", nonce="abc/+=", algorithm=MD5, qop="auth"'
        assert challenge.serialize() == expected

    def test_optional_parameters(self) -> None:
        challenge = DigestChallenge(
            realm="r",
            nonce="n",
            algorithm="SHA-256",
            qop=("auth", "auth-int"),
            opaque='o"q',
            stale=True,
            domain=("sip:a", "sip:b"),
        )
        assert challenge.serialize() == (
            'Digest realm="r", nonce="n", algorithm=SHA-256, qop="auth,auth-int", '
            'opaque="o\\"q", stale=true, domain="sip:a sip:b"'
        )
        assert DigestChallenge.parse(challenge.serialize()) == challenge

    def test_sdk_nonce_regex_finds_our_nonce(self) -> None:
        for challenge in make_auth().challenge(T0, stale=True):
            found = re.search(r', nonce="(.+?)"', challenge.serialize())
            assert found is not None
            assert found[1] == challenge.nonce

    def test_control_characters_are_refused(self) -> None:
        with pytest.raises(ValueError, match="control character"):
            DigestChallenge(realm="r\r\nX-Injected: 1", nonce="n").serialize()


class TestCredentials:
    def test_official_sdk_shape_quoted_algorithm(self) -> None:
        creds = DigestCredentials.parse(sdk_authorization("NONCE"))
        assert creds.username == AUTH_ID
        assert creds.realm == DOMAIN
        assert creds.uri == f"sip:{DOMAIN}"
        assert creds.algorithm == "MD5"
        assert (creds.qop, creds.cnonce, creds.nc, creds.opaque) == (None, None, None, None)

    def test_legacy_sdk_shape_bare_algorithm(self) -> None:
        creds = DigestCredentials.parse(sdk_authorization("NONCE", quoted_algorithm=False))
        assert creds.algorithm == "MD5"

    def test_algorithm_absent_means_md5(self) -> None:
        creds = DigestCredentials.parse(
            'Digest username="u", realm="r", nonce="n", uri="u", response="0"'
        )
        assert creds.algorithm is None
        assert creds.effective_algorithm == "MD5"

    def test_serialize_shape(self) -> None:
        creds = DigestCredentials(
            username="u",
            realm="r",
            nonce="n",
            uri="sip:r",
            response="ab",
            algorithm="SHA-256",
            cnonce="c",
            opaque="o",
            qop="auth",
            nc="00000001",
        )
        assert creds.serialize() == (
            'Digest username="u", realm="r", nonce="n", uri="sip:r", response="ab", '
            'algorithm=SHA-256, cnonce="c", opaque="o", qop=auth, nc=00000001'
        )
        assert DigestCredentials.parse(creds.serialize()) == creds

    @pytest.mark.parametrize(
        ("value", "message"),
        [
            (
                'Digest realm="r", nonce="n", uri="u", response="0"',
                "Digest credentials has no username",
            ),
            (
                'Digest username="u", realm="r", nonce="n", uri="u"',
                "Digest credentials has no response",
            ),
            (
                CREDS_HEAD + ", qop=auth, nc=00000001",
                "Digest credentials with qop need cnonce and nc",
            ),
            (
                CREDS_HEAD + ', qop=auth, cnonce="c", nc=1',
                "Digest nc must be 8 hex digits, got '1'",
            ),
        ],
    )
    def test_errors(self, value: str, message: str) -> None:
        with pytest.raises(ParseError) as info:
            DigestCredentials.parse(value)
        assert str(info.value) == message


_text = st.text(st.characters(blacklist_categories=("Cs", "Cc")), max_size=30)
_token = st.from_regex(r"[A-Za-z0-9\-.!%*_+`'~]{1,12}", fullmatch=True)
_algorithms = st.sampled_from(["MD5", "MD5-sess", "SHA-256", "SHA-256-sess", "X-Other"])


class TestProperties:
    @given(st.text(max_size=200))
    def test_any_text_parses_or_raises_parse_error(self, value: str) -> None:
        for parser in (DigestChallenge.parse, DigestCredentials.parse):
            with contextlib.suppress(ParseError):
                parser(value)

    @given(
        st.from_regex(
            r'(?i:digest) [a-z]{1,6}=("([^"\\]|\\.){0,8}"|[!-~]{1,8})(, ?[a-z]{1,6}=[^,]{0,9}){0,6}'
        )
    )
    def test_near_miss_text_parses_or_raises_parse_error(self, value: str) -> None:
        for parser in (DigestChallenge.parse, DigestCredentials.parse):
            with contextlib.suppress(ParseError):
                parser(value)

    @given(
        realm=_text,
        nonce=_text,
        algorithm=_algorithms,
        qop=st.lists(_token, max_size=3).map(tuple),
        opaque=st.none() | _text,
        stale=st.booleans(),
        domain=st.lists(_token, max_size=3).map(tuple),
    )
    def test_challenge_round_trip(
        self,
        realm: str,
        nonce: str,
        algorithm: str,
        qop: tuple[str, ...],
        opaque: str | None,
        stale: bool,
        domain: tuple[str, ...],
    ) -> None:
        challenge = DigestChallenge(
            realm=realm,
            nonce=nonce,
            algorithm=algorithm,
            qop=qop,
            opaque=opaque,
            stale=stale,
            domain=domain,
        )
        assert DigestChallenge.parse(challenge.serialize()) == challenge

    @given(
        fields=st.tuples(_text, _text, _text, _text, _text),
        algorithm=st.none() | _algorithms,
        opaque=st.none() | _text,
        qop=st.none() | st.tuples(_token, _text, st.from_regex(r"[0-9a-f]{8}", fullmatch=True)),
    )
    def test_credentials_round_trip(
        self,
        fields: tuple[str, str, str, str, str],
        algorithm: str | None,
        opaque: str | None,
        qop: tuple[str, str, str] | None,
    ) -> None:
        username, realm, nonce, uri, response = fields
        creds = DigestCredentials(
            username=username,
            realm=realm,
            nonce=nonce,
            uri=uri,
            response=response,
            algorithm=algorithm,
            opaque=opaque,
            qop=qop and qop[0],
            cnonce=qop and qop[1],
            nc=qop and qop[2],
        )
        assert DigestCredentials.parse(creds.serialize()) == creds


class TestRfcVectors:
    def test_rfc2617_section_3_5(self) -> None:
        challenge = DigestChallenge.parse(
            'Digest realm="testrealm@host.com", qop="auth,auth-int", '
            'nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", opaque="5ccc069c403ebaf9f0171e9517f40e41"'
        )
        creds = build_credentials(
            challenge,
            method="GET",
            uri="/dir/index.html",
            username="Mufasa",
            password="Circle Of Life",
            cnonce="0a4f113b",
        )
        assert creds.response == "6629fae49393a05397450978507c4ef1"
        assert (creds.qop, creds.nc, creds.opaque) == ("auth", "00000001", challenge.opaque)

    @pytest.mark.parametrize(
        ("algorithm", "response"),
        [
            ("SHA-256", "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"),
            ("MD5", "8ca523f5e9506fed4657c9700eebdbec"),
        ],
    )
    def test_rfc7616_section_3_9_1(self, algorithm: str, response: str) -> None:
        challenge = DigestChallenge(
            realm="http-auth@example.org",
            nonce="7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v",
            algorithm=algorithm,
            qop=("auth", "auth-int"),
            opaque="FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS",
        )
        creds = build_credentials(
            challenge,
            method="GET",
            uri="/dir/index.html",
            username="Mufasa",
            password="Circle of Life",
            cnonce="f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ",
        )
        assert creds.response == response
        assert DigestCredentials.parse(creds.serialize()) == creds

    def test_compute_ha1(self) -> None:
        assert compute_ha1("Mufasa", "testrealm@host.com", "Circle Of Life") == md5(
            "Mufasa:testrealm@host.com:Circle Of Life"
        )
        assert compute_ha1("u", "r", "p", "SHA-256-sess") == hashlib.sha256(b"u:r:p").hexdigest()
        with pytest.raises(ValueError, match="unsupported digest algorithm 'SHA-512-256'"):
            compute_ha1("u", "r", "p", "SHA-512-256")


class TestChallenge:
    def test_md5_first_then_sha256_sharing_one_nonce(self) -> None:
        challenges = make_auth().challenge(T0)
        assert [c.algorithm for c in challenges] == ["MD5", "SHA-256"]
        assert len({c.nonce for c in challenges}) == 1
        assert make_auth().realm == DOMAIN
        assert all(c.qop == ("auth",) and c.realm == DOMAIN and not c.stale for c in challenges)

    def test_nonce_depends_on_time_and_realm(self) -> None:
        auth = make_auth()
        assert auth.make_nonce(T0) == auth.make_nonce(T0)
        assert auth.make_nonce(T0) != auth.make_nonce(T0 + 1)
        assert auth.make_nonce(T0) != make_auth(realm="other").make_nonce(T0)

    @pytest.mark.parametrize(
        ("kwargs", "message"),
        [
            ({"secret": b""}, "nonce secret must not be empty"),
            ({"nonce_lifetime": 0.0}, "nonce_lifetime must be positive"),
            ({"algorithms": ()}, "at least one algorithm"),
            ({"algorithms": ("MD5", "SHA-512-256")}, "unsupported digest algorithm"),
        ],
    )
    def test_bad_configuration(self, kwargs: dict[str, object], message: str) -> None:
        with pytest.raises(ValueError, match=message):
            make_auth(**kwargs)


class TestVerifyRingCentralSdk:
    """Design doc §6.2/§6.3: RFC 2069 answers, quoted or bare algorithm, uri sip:<domain>."""

    @pytest.mark.parametrize("quoted", [True, False])
    def test_register_answer_accepted(self, quoted: bool) -> None:
        auth = make_auth()
        nonce = auth.challenge(T0)[0].nonce
        creds = DigestCredentials.parse(sdk_authorization(nonce, quoted_algorithm=quoted))
        assert auth.verify(creds, method="REGISTER", password=PASSWORD, now=T0 + 5) is AuthResult.OK

    def test_stored_ha1_instead_of_password(self) -> None:
        auth = make_auth()
        creds = DigestCredentials.parse(sdk_authorization(auth.make_nonce(T0)))
        ha1 = compute_ha1(AUTH_ID, DOMAIN, PASSWORD, creds.effective_algorithm)
        assert auth.verify(creds, method="REGISTER", ha1=ha1, now=T0) is AuthResult.OK

    def test_digest_uri_need_not_be_request_uri(self) -> None:
        auth = make_auth()
        creds = build_credentials(
            auth.challenge(T0)[0],
            method="INVITE",
            uri=f"sip:{DOMAIN}",  # request-URI would be sip:102@10.0.0.1:5060
            username=AUTH_ID,
            password=PASSWORD,
            cnonce="c",
        )
        assert auth.verify(creds, method="INVITE", password=PASSWORD, now=T0) is AuthResult.OK

    def test_method_is_hashed(self) -> None:
        auth = make_auth()
        creds = DigestCredentials.parse(sdk_authorization(auth.make_nonce(T0)))
        assert (
            auth.verify(creds, method="INVITE", password=PASSWORD, now=T0)
            is AuthResult.BAD_RESPONSE
        )


class TestVerifyFailures:
    def sdk_creds(self, auth: DigestAuthenticator, now: float = T0) -> DigestCredentials:
        return DigestCredentials.parse(sdk_authorization(auth.make_nonce(now)))

    def test_wrong_password(self) -> None:
        auth = make_auth()
        creds = self.sdk_creds(auth)
        result = auth.verify(creds, method="REGISTER", password="wrong", now=T0)
        assert result is AuthResult.BAD_RESPONSE

    def test_stale_nonce_then_rechallenge(self) -> None:
        auth = make_auth()
        creds = self.sdk_creds(auth)
        assert (
            auth.verify(creds, method="REGISTER", password=PASSWORD, now=T0 + 60) is AuthResult.OK
        )
        result = auth.verify(creds, method="REGISTER", password=PASSWORD, now=T0 + 60.5)
        assert result is AuthResult.STALE
        again = auth.challenge(T0 + 60.5, stale=True)
        assert all(c.stale for c in again)
        assert "stale=true" in again[0].serialize()

    def test_stale_nonce_with_wrong_password_is_bad_response(self) -> None:
        auth = make_auth()
        creds = self.sdk_creds(auth)
        result = auth.verify(creds, method="REGISTER", password="wrong", now=T0 + 3600)
        assert result is AuthResult.BAD_RESPONSE

    def test_nonce_from_the_future_is_stale(self) -> None:
        auth = make_auth()
        creds = self.sdk_creds(auth, now=T0 + 100)
        assert auth.verify(creds, method="REGISTER", password=PASSWORD, now=T0) is AuthResult.STALE

    def forged_nonces(self, auth: DigestAuthenticator) -> list[str]:
        genuine = base64.b64decode(auth.make_nonce(T0))
        tampered = bytearray(genuine)
        tampered[-1] ^= 1
        later_stamp = base64.b64decode(auth.make_nonce(T0 + 10))[:8] + genuine[8:]
        alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
        nonce = auth.make_nonce(T0)
        loose_bits = alphabet[alphabet.index(nonce[-3]) ^ 1]  # decodes to the same bytes
        return [
            nonce[:-3] + loose_bits + "==",
            base64.b64encode(bytes(tampered)).decode(),
            base64.b64encode(later_stamp).decode(),
            make_auth(secret=b"another secret").make_nonce(T0),
            make_auth(realm="evil.example").make_nonce(T0),
            auth.make_nonce(T0)[:-4],
            "dcd98b7102dd2f0e8b11d0f600bfb0c093",
            "not base64!",
            "ñonce",
            "",
        ]

    def test_forged_nonce(self) -> None:
        auth = make_auth()
        for nonce in self.forged_nonces(auth):
            creds = DigestCredentials.parse(sdk_authorization(nonce))
            result = auth.verify(creds, method="REGISTER", password=PASSWORD, now=T0)
            assert result is AuthResult.BAD_NONCE, nonce

    def test_realm_mismatch(self) -> None:
        auth = make_auth(realm="sip.example.com")
        creds = DigestCredentials.parse(sdk_authorization(auth.make_nonce(T0)))
        result = auth.verify(creds, method="REGISTER", password=PASSWORD, now=T0)
        assert result is AuthResult.REALM_MISMATCH

    @pytest.mark.parametrize("algorithm", ["SHA-256", "SHA-512-256", "md4"])
    def test_algorithm_not_offered(self, algorithm: str) -> None:
        auth = make_auth(algorithms=("MD5",))
        creds = replace(self.sdk_creds(auth), algorithm=algorithm)
        result = auth.verify(creds, method="REGISTER", password=PASSWORD, now=T0)
        assert result is AuthResult.UNSUPPORTED_ALGORITHM

    def test_unsupported_qop(self) -> None:
        auth = make_auth()
        creds = replace(self.sdk_creds(auth), qop="auth-conf", cnonce="c", nc="00000001")
        result = auth.verify(creds, method="REGISTER", password=PASSWORD, now=T0)
        assert result is AuthResult.UNSUPPORTED_QOP

    @pytest.mark.parametrize("response", ["", "zz", "ü" * 32, "0" * 32])
    def test_malformed_response(self, response: str) -> None:
        auth = make_auth()
        creds = replace(self.sdk_creds(auth), response=response)
        result = auth.verify(creds, method="REGISTER", password=PASSWORD, now=T0)
        assert result is AuthResult.BAD_RESPONSE

    def test_qop_without_cnonce_is_bad_response(self) -> None:
        auth = make_auth()
        creds = replace(self.sdk_creds(auth), qop="auth", nc="00000001")
        result = auth.verify(creds, method="REGISTER", password=PASSWORD, now=T0)
        assert result is AuthResult.BAD_RESPONSE

    @pytest.mark.parametrize(("password", "ha1"), [(None, None), ("p", "00")])
    def test_exactly_one_secret(self, password: str | None, ha1: str | None) -> None:
        auth = make_auth()
        creds = self.sdk_creds(auth)
        with pytest.raises(ValueError, match="exactly one of password and ha1"):
            auth.verify(creds, method="REGISTER", password=password, ha1=ha1, now=T0)


class TestClientServerPair:
    @pytest.mark.parametrize("algorithm", ["MD5", "SHA-256", "MD5-sess", "SHA-256-sess"])
    @pytest.mark.parametrize("qop", [("auth",), (), ("auth-int",), ("auth", "auth-int")])
    def test_round_trip_over_the_wire(self, algorithm: str, qop: tuple[str, ...]) -> None:
        auth = make_auth(algorithms=(algorithm,))
        (offered,) = auth.challenge(T0)
        seen = DigestChallenge.parse(replace(offered, qop=qop).serialize())
        body = b"v=0\r\n"
        creds = build_credentials(
            seen,
            method="REGISTER",
            uri=f"sip:{DOMAIN}",
            username=AUTH_ID,
            password=PASSWORD,
            cnonce="0a4f113b",
            nc=7,
            body=body,
        )
        assert creds.qop == (qop[0] if qop else None)
        assert creds.nc == ("00000007" if qop else None)
        assert creds.algorithm == algorithm
        received = DigestCredentials.parse(creds.serialize())
        assert auth.verify(
            received, method="REGISTER", password=PASSWORD, now=T0 + 1, body=body
        ) is (AuthResult.OK)
        result = auth.verify(received, method="REGISTER", password="nope", now=T0 + 1, body=body)
        assert result is AuthResult.BAD_RESPONSE
        ha1 = compute_ha1(AUTH_ID, DOMAIN, PASSWORD, received.effective_algorithm)
        assert auth.verify(received, method="REGISTER", ha1=ha1, now=T0 + 61, body=body) is (
            AuthResult.STALE
        )

    def test_auth_int_body_is_checked(self) -> None:
        auth = make_auth()
        challenge = replace(auth.challenge(T0)[1], qop=("auth-int",))
        creds = build_credentials(
            challenge,
            method="MESSAGE",
            uri="sip:x",
            username="u",
            password="p",
            cnonce="c",
            body=b"hi",
        )
        assert (
            auth.verify(creds, method="MESSAGE", password="p", now=T0, body=b"hi") is AuthResult.OK
        )
        assert auth.verify(creds, method="MESSAGE", password="p", now=T0, body=b"ho") is (
            AuthResult.BAD_RESPONSE
        )

    def test_uppercase_nc_is_hashed_verbatim(self) -> None:
        auth = make_auth()
        creds = build_credentials(
            auth.challenge(T0)[0],
            method="REGISTER",
            uri="sip:x",
            username="u",
            password="p",
            cnonce="c",
            nc=10,
        )
        assert creds.nc == "0000000a"
        upper = replace(creds, nc="0000000A")
        assert (
            auth.verify(upper, method="REGISTER", password="p", now=T0) is AuthResult.BAD_RESPONSE
        )

    @pytest.mark.parametrize("nc", [0, -1, 2**32])
    def test_nc_range(self, nc: int) -> None:
        with pytest.raises(ValueError, match="nc out of range"):
            build_credentials(
                DigestChallenge(realm="r", nonce="n"),
                method="REGISTER",
                uri="sip:x",
                username="u",
                password="p",
                cnonce="c",
                nc=nc,
            )

    def test_client_refuses_unknown_algorithm(self) -> None:
        with pytest.raises(ValueError, match="unsupported digest algorithm 'X-Other'"):
            build_credentials(
                DigestChallenge(realm="r", nonce="n", algorithm="X-Other"),
                method="REGISTER",
                uri="sip:x",
                username="u",
                password="p",
                cnonce="c",
            )
