"""The jwt-bearer grant (KIP-1139) without a broker: the assertion's header and claims as values
(time an argument), its signature checked by ``cryptography`` and by our own verifier, the key
file (encrypted PKCS#8, rotation, wrong passphrase or kind), ready-made assertion files, the
provider against the local token endpoint, and the settings' validation."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa, utils

from aioproducer import ConfigError, ProducerConfig
from aioproducer._core.assertion import (
    GRANT_TYPE,
    AssertionClaims,
    InvalidAssertionError,
    assertion_parts,
    check_assertion,
    parse_template,
)
from aioproducer._core.jws import verify
from aioproducer._core.jwt import parse
from aioproducer._io.oauth_assertion import FileAssertion, JwtBearerTokenProvider, SignedAssertion
from aioproducer.errors import SaslAuthenticationError
from aioproducer.testing import TokenEndpoint

PASSPHRASE = "pa55-Phrase!"
NOW_MS = 1_750_000_123_456


def _pem(key: Any, passphrase: str | None = None) -> bytes:
    encryption: Any = (
        serialization.BestAvailableEncryption(passphrase.encode())
        if passphrase
        else serialization.NoEncryption()
    )
    return bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption)
    )


def _public_pem(key: Any) -> bytes:
    return bytes(
        key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )


def _b64(value: int, size: int | None = None) -> str:
    import base64

    raw = value.to_bytes(size or (value.bit_length() + 7) // 8, "big")
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _jwk(key: Any) -> dict[str, str]:
    pub = key.public_key().public_numbers()
    if isinstance(key, rsa.RSAPrivateKey):
        return {"kty": "RSA", "n": _b64(pub.n), "e": _b64(pub.e)}
    return {"kty": "EC", "crv": "P-256", "x": _b64(pub.x, 32), "y": _b64(pub.y, 32)}


RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
EC_KEY = ec.generate_private_key(ec.SECP256R1())


def test_claims_are_layered_as_javas_templates() -> None:
    claims = AssertionClaims("rs256", aud="idp", iss="me", sub="app", exp_seconds=600)
    template = ({"kid": "k7", "alg": "none"}, {"aud": "other", "roles": ["a"], "exp": 1})
    header, payload = assertion_parts(claims, NOW_MS, template, jti="id-1")
    assert header == {"kid": "k7", "alg": "RS256", "typ": "JWT"}
    now = NOW_MS // 1000
    assert payload == {
        "aud": "other",  # the template overrides the settings' static claims
        "iss": "me",
        "sub": "app",
        "roles": ["a"],
        "iat": now,
        "exp": now + 600,  # the dynamic claims override the template
        "nbf": now - 60,
    }
    _, with_jti = assertion_parts(AssertionClaims(jti_include=True), NOW_MS, jti="id-1")
    assert with_jti["jti"] == "id-1" and set(with_jti) == {"iat", "exp", "nbf", "jti"}


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("{", "is not JSON"),
        ("[1]", "is not a JSON object"),
        ('{"header": 3}', "'header' is not an object"),
    ],
)
def test_a_bad_template_says_why(text: str, says: str) -> None:
    with pytest.raises(InvalidAssertionError, match=says):
        parse_template(text, "t.json")
    assert parse_template("{}", "t.json") == ({}, {})


@pytest.mark.parametrize("alg", ["RS256", "ES256"])
def test_the_signed_assertion_verifies_independently(tmp_path: Path, alg: str) -> None:
    key: Any = RSA_KEY if alg == "RS256" else EC_KEY
    (tmp_path / "key.pem").write_bytes(_pem(key, PASSPHRASE))
    (tmp_path / "t.json").write_text(json.dumps({"header": {"kid": "k1"}, "payload": {"x": 1}}))
    source = SignedAssertion(
        AssertionClaims(alg, aud="https://idp/token", sub="app", jti_include=True),
        str(tmp_path / "key.pem"),
        PASSPHRASE,
        str(tmp_path / "t.json"),
        clock=lambda: NOW_MS / 1000,
    )
    first, second = source.create(), source.create()
    jwt = parse(first)
    assert jwt.header == {"kid": "k1", "alg": alg, "typ": "JWT"}
    assert jwt.payload["iat"] == NOW_MS // 1000 and jwt.payload["x"] == 1
    assert jwt.payload["jti"] != parse(second).payload["jti"]  # a fresh id each time
    assert verify(alg, _jwk(key), jwt.signing_input, jwt.signature)
    public: Any = key.public_key()
    if alg == "RS256":
        public.verify(jwt.signature, jwt.signing_input, padding.PKCS1v15(), hashes.SHA256())
    else:
        assert len(jwt.signature) == 64  # JWS's r || s, not DER
        r, s = int.from_bytes(jwt.signature[:32], "big"), int.from_bytes(jwt.signature[32:], "big")
        der = utils.encode_dss_signature(r, s)
        public.verify(der, jwt.signing_input, ec.ECDSA(hashes.SHA256()))
    tampered = jwt.signing_input.replace(b".", b"X.", 1)
    assert not verify(alg, _jwk(key), tampered, jwt.signature)
    assert PASSPHRASE not in repr(source)


def test_a_changed_key_file_is_read_again(tmp_path: Path) -> None:
    path = tmp_path / "key.pem"
    path.write_bytes(_pem(RSA_KEY))
    source = SignedAssertion(AssertionClaims(), str(path))
    jwt = parse(source.create())
    assert verify("RS256", _jwk(RSA_KEY), jwt.signing_input, jwt.signature)
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    path.write_bytes(_pem(other) + b"\n")  # another size: seen even within one mtime tick
    jwt = parse(source.create())
    assert verify("RS256", _jwk(other), jwt.signing_input, jwt.signature)
    assert not verify("RS256", _jwk(RSA_KEY), jwt.signing_input, jwt.signature)


@pytest.mark.parametrize(
    ("pem", "passphrase", "alg", "says"),
    [
        (_pem(RSA_KEY, PASSPHRASE), "wrong", "RS256", "not a PEM private key, or a wrong"),
        (_pem(RSA_KEY, PASSPHRASE), None, "RS256", "is encrypted: give the passphrase"),
        (_pem(RSA_KEY), PASSPHRASE, "RS256", "is not encrypted: drop the passphrase"),
        (_pem(EC_KEY), None, "RS256", "RS256 needs an RSA key"),
        (_pem(RSA_KEY), None, "ES256", "ES256 needs a P-256 EC key"),
        (b"not a key", None, "RS256", "not a PEM private key"),
    ],
)
def test_a_key_that_cannot_sign_says_why(
    tmp_path: Path, pem: bytes, passphrase: str | None, alg: str, says: str
) -> None:
    (tmp_path / "key.pem").write_bytes(pem)
    source = SignedAssertion(AssertionClaims(alg), str(tmp_path / "key.pem"), passphrase)
    with pytest.raises(InvalidAssertionError, match=says) as info:
        source.create()
    assert "key.pem" in str(info.value) and PASSPHRASE not in str(info.value)


def test_an_assertion_file_is_read_for_every_request(tmp_path: Path) -> None:
    path = tmp_path / "assertion.jwt"
    source = FileAssertion(str(path))
    with pytest.raises(InvalidAssertionError, match="cannot read the assertion file"):
        source.create()
    path.write_text("a.b")
    with pytest.raises(InvalidAssertionError, match="is not a JWT"):
        source.create()
    token = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhcHAifQ.c2ln"
    path.write_text(f"  {token}\n")
    assert source.create() == token
    with pytest.raises(InvalidAssertionError, match="has no signature"):
        check_assertion(token.rsplit(".", 1)[0] + ".", "f")


@pytest.mark.asyncio
async def test_the_provider_sends_the_grant_and_a_fresh_assertion(tmp_path: Path) -> None:
    (tmp_path / "key.pem").write_bytes(_pem(EC_KEY, PASSPHRASE))
    with TokenEndpoint({}, assertion_keys={"app": _public_pem(EC_KEY)}) as idp:
        idp.assertion_audience = idp.url
        source = SignedAssertion(
            AssertionClaims("ES256", aud=idp.url, sub="app"),
            str(tmp_path / "key.pem"),
            PASSPHRASE,
        )
        provider = JwtBearerTokenProvider(idp.url, source, "kafka")
        token = await provider.token()
        assert parse(token).payload["sub"] == "app"
        assert idp.requests == [("app", "kafka", 200)]
        assert idp.assertions[0][1]["aud"] == idp.url
        assert PASSPHRASE not in repr(provider) and "ES256" in repr(provider)
        # An assertion the endpoint refuses (another key signed it) is a typed error.
        (tmp_path / "key.pem").write_bytes(_pem(ec.generate_private_key(ec.SECP256R1())))
        other = JwtBearerTokenProvider(
            idp.url, SignedAssertion(AssertionClaims("ES256", sub="app"), str(tmp_path / "key.pem"))
        )
        with pytest.raises(SaslAuthenticationError, match=r"HTTP 400.*invalid_grant"):
            await other.token()
        broken = JwtBearerTokenProvider(idp.url, FileAssertion(str(tmp_path / "missing.jwt")))
        with pytest.raises(SaslAuthenticationError, match="cannot make the jwt-bearer assertion"):
            await broken.token()
        assert len(idp.requests) == 2  # no request without an assertion


BASE: dict[str, Any] = {
    "security_protocol": "SASL_SSL",
    "sasl_mechanism": "OAUTHBEARER",
    "sasl_oauthbearer_token_endpoint_url": "https://idp.example/token",
}

KEY = {"sasl_oauthbearer_assertion_private_key_file": "/k.pem"}
CLIENT = {
    "sasl_oauthbearer_client_credentials_client_id": "app",
    "sasl_oauthbearer_client_credentials_client_secret": "s",
}


@pytest.mark.parametrize(
    ("settings", "says"),
    [
        ({**KEY, "sasl_oauthbearer_assertion_claim_exp_seconds": 86401}, r"within \[0, 86400\]"),
        ({**KEY, "sasl_oauthbearer_assertion_claim_nbf_seconds": -1}, r"within \[0, 3600\]"),
        ({**KEY, "sasl_oauthbearer_assertion_algorithm": "HS256"}, "must be 'RS256' or 'ES256'"),
        (
            {**CLIENT, "sasl_oauthbearer_assertion_claim_sub": "x"},
            "needs sasl_oauthbearer_assertion_private_key_file",
        ),
        ({}, "or sasl_oauthbearer_assertion_file or sasl_oauthbearer_assertion_private_key_file"),
        (
            {
                "sasl_oauthbearer_assertion_file": "/a.jwt",
                "sasl_oauthbearer_assertion_private_key_file": "/k.pem",
            },
            "ready-made assertion: sasl_oauthbearer_assertion_private_key_file",
        ),
        (
            {
                "sasl_oauthbearer_assertion_file": "/a.jwt",
                "sasl_oauthbearer_client_credentials_client_secret": "s",
            },
            "not both",
        ),
        ({"sasl_oauthbearer_assertion_file": " "}, "must not be empty"),
    ],
)
def test_assertion_settings_are_validated(settings: dict[str, Any], says: str) -> None:
    with pytest.raises(ConfigError, match=says):
        ProducerConfig(**BASE, **settings)


def test_missing_cryptography_is_a_config_error_naming_the_extra(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "cryptography", None)
    with pytest.raises(ConfigError, match=r"pip install 'aioproducer\[oauth-assertion\]'"):
        ProducerConfig(**BASE, sasl_oauthbearer_assertion_private_key_file="/k.pem")
    # A ready-made assertion needs no signing, hence no cryptography.
    ProducerConfig(**BASE, sasl_oauthbearer_assertion_file="/a.jwt")


def test_java_properties_select_the_jwt_bearer_grant(tmp_path: Path) -> None:
    cfg = ProducerConfig.from_properties(
        {
            **{k.replace("_", "."): v for k, v in BASE.items()},
            "sasl.oauthbearer.assertion.algorithm": "ES256",
            "sasl.oauthbearer.assertion.claim.aud": "https://idp.example/token",
            "sasl.oauthbearer.assertion.claim.exp.seconds": "600",
            "sasl.oauthbearer.assertion.claim.jti.include": "true",
            "sasl.oauthbearer.assertion.private.key.file": str(tmp_path / "k.pem"),
            "sasl.oauthbearer.assertion.private.key.passphrase": PASSPHRASE,
            "sasl.oauthbearer.scope": "kafka",
            "sasl.oauthbearer.jwt.retriever.class": "org.apache.kafka.common.security."
            "oauthbearer.JwtBearerJwtRetriever",
        }
    )
    provider = cfg.oauth_token_provider()
    assert isinstance(provider, JwtBearerTokenProvider)
    source = provider.assertion
    assert isinstance(source, SignedAssertion)
    assert source.claims == AssertionClaims(
        "ES256", aud="https://idp.example/token", exp_seconds=600, jti_include=True
    )
    assert PASSPHRASE not in repr(cfg) and PASSPHRASE not in repr(provider)
    assert GRANT_TYPE.endswith("jwt-bearer")


@pytest.mark.parametrize(
    ("retriever", "settings", "says"),
    [
        ("JwtBearerJwtRetriever", CLIENT, "needs sasl.oauthbearer.assertion.file or"),
        ("ClientCredentialsJwtRetriever", KEY, "cannot take the sasl.oauthbearer.assertion"),
        ("org.apache.kafka.common.security.oauthbearer.FileJwtRetriever", CLIENT, "knows"),
        ("com.example.MyRetriever", CLIENT, "give sasl_oauth_token_provider"),
    ],
)
def test_the_java_retriever_class_must_agree_with_the_settings(
    retriever: str, settings: dict[str, Any], says: str
) -> None:
    props = {k.replace("_", "."): v for k, v in {**BASE, **settings}.items()}
    with pytest.raises(ConfigError, match=says):
        ProducerConfig.from_properties({**props, "sasl.oauthbearer.jwt.retriever.class": retriever})
    client = {k.replace("_", "."): v for k, v in {**BASE, **CLIENT}.items()}
    for agreeing in ("DefaultJwtRetriever", "ClientCredentialsJwtRetriever"):
        cfg = ProducerConfig.from_properties(
            {**client, "sasl.oauthbearer.jwt.retriever.class": agreeing}
        )
        assert cfg.sasl_oauthbearer_client_credentials_client_secret == "s"
