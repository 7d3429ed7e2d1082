"""Password hashing, E.164 numbers and JWT credential encoding."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from callwatch.store.errors import InvalidRecord
from callwatch.store.jwt_credentials import (
    InvalidJwtCredential,
    decode_credential,
    encode_credential,
)
from callwatch.store.numbers import is_e164, normalize_e164
from callwatch.store.passwords import hash_password, sha256_hex, verify_password
from callwatch.store.repo import JwtCredential


def test_hash_round_trip() -> None:
    encoded = hash_password("correct horse", salt=b"0123456789abcdef")
    assert encoded.startswith("scrypt$")
    assert "correct horse" not in encoded
    assert verify_password("correct horse", encoded)
    assert not verify_password("wrong", encoded)


def test_salt_changes_the_hash() -> None:
    assert hash_password("pw", salt=b"a" * 16) != hash_password("pw", salt=b"b" * 16)


@settings(max_examples=50)
@given(st.text(max_size=80))
def test_verify_never_crashes_on_garbage(encoded: str) -> None:
    assert verify_password("pw", encoded) is False


def test_sha256_hex() -> None:
    assert sha256_hex("abc").startswith("ba7816bf")


@pytest.mark.parametrize(
    ("raw", "normal"),
    [("+16505550100", "+16505550100"), ("16505550100", "+16505550100"),
     (" +1 (650) 555-0100 ", "+16505550100"), ("+44 20 7946 0958", "+442079460958")],
)  # fmt: skip
def test_normalize_e164(raw: str, normal: str) -> None:
    assert normalize_e164(raw) == normal


@pytest.mark.parametrize("raw", ["", "+", "abc", "+0123456789", "+1234", "+1234567890123456"])
def test_not_e164(raw: str) -> None:
    with pytest.raises(InvalidRecord):
        normalize_e164(raw)
    assert not is_e164(raw)


KEY = "k" * 64
OTHER_KEY = "o" * 64


class TestJwtCredentials:
    CREDENTIAL = JwtCredential(jti="j1", extension_id=5, account_id=6)

    def test_round_trip(self) -> None:
        token = encode_credential(self.CREDENTIAL, key=KEY)
        claims = decode_credential(token, key=KEY)
        assert (claims.jti, claims.extension_id, claims.account_id) == ("j1", 5, 6)
        assert claims.expires_at is None

    def test_wrong_key(self) -> None:
        token = encode_credential(self.CREDENTIAL, key=KEY)
        with pytest.raises(InvalidJwtCredential):
            decode_credential(token, key=OTHER_KEY)

    @settings(max_examples=50)
    @given(st.text(max_size=200))
    def test_garbage_is_invalid_not_a_crash(self, token: str) -> None:
        with pytest.raises(InvalidJwtCredential):
            decode_credential(token, key=KEY)
