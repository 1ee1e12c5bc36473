"""The SASL mechanisms' message logic (sans-IO): RFC 5802 / RFC 7677 test vectors for SCRAM,
the RFC 7628 / KIP-342 framing of OAUTHBEARER, and every way a broker answer can be refused."""

from __future__ import annotations

import base64

import pytest

from aioproducer._core.sasl import (
    OAuthBearerClient,
    PlainClient,
    ScramClient,
    reauthentication_delay_ms,
)
from aioproducer.errors import SaslAuthenticationError

# RFC 5802 §5 (SCRAM-SHA-1) and RFC 7677 §3 (SCRAM-SHA-256): user "user", password "pencil".
RFC5802 = (
    "SCRAM-SHA-1",
    "fyko+d2lbbFgONRv9qkxdawL",
    b"r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=4096",
    b"c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts=",
    b"v=rmF9pqV8S7suAoZWja4dJRkFsKQ=",
)
RFC7677 = (
    "SCRAM-SHA-256",
    "rOprNGfwEbeRWgbNEkqO",
    b"r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",
    b"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
    b"p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
    b"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=",
)


@pytest.mark.parametrize("vector", [RFC5802, RFC7677], ids=["rfc5802", "rfc7677"])
def test_scram_matches_the_rfc_test_vectors(vector: tuple[str, str, bytes, bytes, bytes]) -> None:
    mechanism, nonce, server_first, client_final, server_final = vector
    client = ScramClient(mechanism, "user", "pencil", nonce)
    assert client.step(None) == f"n,,n=user,r={nonce}".encode()
    assert client.step(server_first) == client_final
    assert client.step(server_final) is None
    assert "pencil" not in repr(client)


def _to_final(mechanism: str = "SCRAM-SHA-256") -> ScramClient:
    client = ScramClient(mechanism, "user", "pencil", RFC7677[1])
    client.step(None)
    client.step(RFC7677[2])
    return client


def test_a_server_signature_that_does_not_verify_fails() -> None:
    good = base64.b64decode(RFC7677[4][2:])
    forged = bytes([good[0] ^ 1]) + good[1:]
    client = _to_final()
    with pytest.raises(SaslAuthenticationError, match=r"SCRAM-SHA-256.*does not verify"):
        client.step(b"v=" + base64.b64encode(forged))
    with pytest.raises(SaslAuthenticationError, match="does not verify"):
        _to_final().step(b"v=not base64!")


@pytest.mark.parametrize(
    ("server_first", "says"),
    [
        (b"r=someone-elses-nonce,s=QSXCR+Q6sek8bf92,i=4096", "nonce"),
        (b"r=rOprNGfwEbeRWgbNEkqO,s=QSXCR+Q6sek8bf92,i=4096", "nonce"),  # not extended
        (b"r=rOprNGfwEbeRWgbNEkqOxx,s=QSXCR+Q6sek8bf92,i=10", "iteration count 10"),
        (b"r=rOprNGfwEbeRWgbNEkqOxx,s=QSXCR+Q6sek8bf92,i=99999999", "iteration count"),
        (b"r=rOprNGfwEbeRWgbNEkqOxx,s=QSXCR+Q6sek8bf92", "lacks r, s or i"),
        (b"r=rOprNGfwEbeRWgbNEkqOxx,s=***,i=4096", "malformed salt"),
        (b"e=unknown-user", "refused: unknown-user"),
        (b"\xff\xfe", "not UTF-8"),
        (b"garbage", "malformed"),
    ],
)
def test_a_hostile_server_first_message_is_refused(server_first: bytes, says: str) -> None:
    client = ScramClient("SCRAM-SHA-512", "user", "pencil", "rOprNGfwEbeRWgbNEkqO")
    client.step(None)
    with pytest.raises(SaslAuthenticationError, match=f"SCRAM-SHA-512.*{says}"):
        client.step(server_first)


def test_scram_escapes_the_user_name_and_checks_its_nonce() -> None:
    assert ScramClient("SCRAM-SHA-512", "a=b,c", "p", "n0nce").step(None) == (
        b"n,,n=a=3Db=2Cc,r=n0nce"
    )
    with pytest.raises(ValueError, match="nonce"):
        ScramClient("SCRAM-SHA-512", "u", "p", "has,comma")
    with pytest.raises(ValueError, match="not a SCRAM mechanism"):
        ScramClient("SCRAM-MD5", "u", "p", "n")


def test_plain_sends_its_one_message_once() -> None:
    client = PlainClient("alice", "pw")
    assert client.step(None) == b"\0alice\0pw"
    assert client.step(b"") is None
    assert "pw" not in repr(client)


def test_oauthbearer_frames_the_token_and_sorted_extensions() -> None:
    client = OAuthBearerClient("eyJ.tok.", {"traceId": "abc 1", "logicalCluster": "lkc-1"})
    assert client.step(None) == (
        b"n,,\x01auth=Bearer eyJ.tok.\x01logicalCluster=lkc-1\x01traceId=abc 1\x01\x01"
    )
    assert client.step(b"") is None
    assert "eyJ" not in repr(client)


def test_oauthbearer_answers_an_error_challenge_then_reports_it() -> None:
    client = OAuthBearerClient("tok")
    client.step(None)
    assert client.step(b'{"status":"invalid_token"}') == b"\x01"
    assert client.error_challenge == '{"status":"invalid_token"}'
    with pytest.raises(SaslAuthenticationError, match="invalid_token"):
        client.step(b"")


@pytest.mark.parametrize(
    ("token", "extensions", "says"),
    [
        ("", None, "empty or malformed"),
        ("two words", None, "empty or malformed"),
        ("t", {"auth": "x"}, "'auth'"),
        ("t", {"bad-name": "x"}, "'bad-name'"),
        ("t", {"ok": "bell\x07"}, "invalid characters"),
    ],
)
def test_oauthbearer_refuses_bad_tokens_and_extensions(
    token: str, extensions: dict[str, str] | None, says: str
) -> None:
    with pytest.raises(SaslAuthenticationError, match=says):
        OAuthBearerClient(token, extensions)


def test_reauthentication_happens_at_85_to_95_percent_of_the_session_with_a_margin() -> None:
    assert reauthentication_delay_ms(0, 0.5) == 0
    assert reauthentication_delay_ms(10_000, 0.0) == 8500
    assert reauthentication_delay_ms(10_000, 0.999999) == 9499
    assert reauthentication_delay_ms(1, 0.0) == 1
    # Short sessions: at least 300 ms before the end, but not before half of the session.
    assert reauthentication_delay_ms(2500, 0.999999) == 2200
    assert reauthentication_delay_ms(2500, 0.0) == 2125
    assert reauthentication_delay_ms(400, 0.5) == 200
