"""Digest authentication client (RFC 3261 §22, RFC 2617, RFC 7616, RFC 8760)."""

from __future__ import annotations

import ast
import hashlib
import inspect
import random

import pytest

import pua.sip.digest as digest_module
from pua.errors import LocalProtocolError
from pua.sip.build import make_response
from pua.sip.digest import (
    FAILURE_REASONS,
    SUPPORTED_ALGORITHMS,
    AuthState,
    CredentialStore,
    DigestClient,
    DigestCredentials,
    authorization_value,
    digest_response,
)
from pua.sip.fields import Challenge, parse_challenge
from pua.sip.headers import Headers
from pua.sip.message import Request, Response

URI = "sip:presence@example.com"
REALM = "example.com"
ALICE = DigestCredentials("alice", "secret", REALM)


# ----------------------------------------------------------------- helpers
def make_request(
    method: str = "PUBLISH",
    uri: str = URI,
    *,
    cseq: int = 10,
    body: bytes = b"",
    extra: list[tuple[str, str]] | None = None,
) -> Request:
    """A request as it went out, with two Via fields (one in compact form)
    so that tests can check that a retry carries none of them."""
    headers = Headers(
        [
            ("Via", "SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK-first;rport"),
            ("v", "SIP/2.0/UDP 192.0.2.9:5060;branch=z9hG4bK-second"),
            ("Max-Forwards", "70"),
            ("To", f"<{uri}>"),
            ("From", f"<{uri}>;tag=fromtag1"),
            ("Call-ID", "cid-1@example.com"),
            ("CSeq", f"{cseq} {method}"),
            ("Event", "presence"),
            *(extra or []),
        ]
    )
    return Request(method, uri, headers, body)


def challenge_response(
    request: Request, status: int, *challenges: str, proxy: bool | None = None
) -> Response:
    """``request``'s 401/407 carrying ``challenges`` as WWW-Authenticate
    (401) or Proxy-Authenticate (407) fields."""
    base = make_response(request, status, to_tag="uas-tag")
    if proxy is None:
        proxy = status == 407
    name = "Proxy-Authenticate" if proxy else "WWW-Authenticate"
    return Response(
        status, base.reason, Headers([*base.headers.items(), *((name, c) for c in challenges)])
    )


def with_fields(response: Response, *fields: tuple[str, str]) -> Response:
    return Response(response.status, response.reason, Headers([*response.headers.items(), *fields]))


def client(*credentials: DigestCredentials, seed: int = 7, **kwargs: bool) -> DigestClient:
    return DigestClient(credentials or (ALICE,), random.Random(seed), **kwargs)


def auth_fields(request: Request, name: str = "Authorization") -> list[Challenge]:
    return [parse_challenge(v, name.lower()) for v in request.headers.get_all(name)]


def only_auth(request: Request, name: str = "Authorization") -> Challenge:
    (challenge,) = auth_fields(request, name)
    return challenge


def h(algorithm: str, data: str | bytes) -> str:
    raw = data.encode() if isinstance(data, str) else data
    return hashlib.new(algorithm, raw).hexdigest()


def expected(
    hash_name: str,
    *,
    username: str = "alice",
    password: str = "secret",
    realm: str = REALM,
    method: str = "PUBLISH",
    uri: str = URI,
    nonce: str,
    qop: str | None,
    nc: str = "00000001",
    cnonce: str = "",
    sess: bool = False,
    body: bytes = b"",
) -> str:
    """The response value written out from RFC 7616 §3.4.1-§3.4.3 with
    hashlib alone, independently of the module under test."""
    ha1 = h(hash_name, f"{username}:{realm}:{password}")
    if sess:
        ha1 = h(hash_name, f"{ha1}:{nonce}:{cnonce}")
    if qop == "auth-int":
        ha2 = h(hash_name, f"{method}:{uri}:{h(hash_name, body)}")
    else:
        ha2 = h(hash_name, f"{method}:{uri}")
    if qop is None:
        return h(hash_name, f"{ha1}:{nonce}:{ha2}")
    return h(hash_name, f"{ha1}:{nonce}:{nc}:{cnonce}:{qop}:{ha2}")


# ------------------------------------------------------------ RFC vectors
def test_rfc2617_section_3_5_example() -> None:
    # RFC 2617 §3.5: Mufasa / "Circle Of Life", qop=auth, nc=00000001,
    # cnonce="0a4f113b" -> response="6629fae49393a05397450978507c4ef1"
    challenge = parse_challenge(
        'Digest realm="testrealm@host.com", qop="auth,auth-int", '
        'nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", '
        'opaque="5ccc069c403ebaf9f0171e9517f40e41"'
    )
    value = authorization_value(
        challenge,
        DigestCredentials("Mufasa", "Circle Of Life"),
        method="GET",
        uri="/dir/index.html",
        nc=1,
        cnonce="0a4f113b",
    )
    assert value == (
        'Digest username="Mufasa", realm="testrealm@host.com", '
        'nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", uri="/dir/index.html", '
        'response="6629fae49393a05397450978507c4ef1", cnonce="0a4f113b", '
        'opaque="5ccc069c403ebaf9f0171e9517f40e41", qop=auth, nc=00000001'
    )
    assert (
        digest_response(
            None,
            username="Mufasa",
            realm="testrealm@host.com",
            password="Circle Of Life",
            method="GET",
            uri="/dir/index.html",
            nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093",
            qop="auth",
            nc=1,
            cnonce="0a4f113b",
        )
        == "6629fae49393a05397450978507c4ef1"
    )


_RFC7616_NONCE = "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v"
_RFC7616_OPAQUE = "FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS"
_RFC7616_CNONCE = "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ"


@pytest.mark.parametrize(
    ("algorithm", "response"),
    [
        # RFC 7616 §3.9.1, the SHA-256 answer
        ("SHA-256", "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"),
        # RFC 7616 §3.9.1, the MD5 answer
        ("MD5", "8ca523f5e9506fed4657c9700eebdbec"),
    ],
)
def test_rfc7616_section_3_9_1_examples(algorithm: str, response: str) -> None:
    challenge = parse_challenge(
        f'Digest realm="http-auth@example.org", qop="auth, auth-int", '
        f"algorithm={algorithm}, "
        f'nonce="{_RFC7616_NONCE}", opaque="{_RFC7616_OPAQUE}"'
    )
    value = authorization_value(
        challenge,
        DigestCredentials("Mufasa", "Circle of Life"),
        method="GET",
        uri="/dir/index.html",
        nc=1,
        cnonce=_RFC7616_CNONCE,
    )
    # RFC 7616 §3.4: quoted username, realm, nonce, uri, response, cnonce,
    # opaque; unquoted algorithm, qop, nc
    assert value == (
        f'Digest username="Mufasa", realm="http-auth@example.org", '
        f'nonce="{_RFC7616_NONCE}", uri="/dir/index.html", response="{response}", '
        f'algorithm={algorithm}, cnonce="{_RFC7616_CNONCE}", opaque="{_RFC7616_OPAQUE}", '
        f"qop=auth, nc=00000001"
    )


def test_digest_response_rejects_what_it_cannot_compute() -> None:
    def compute(algorithm: str, qop: str | None = None, nc: int = 1) -> str:
        return digest_response(
            algorithm,
            username="u",
            realm="r",
            password="p",
            method="GET",
            uri="/",
            nonce="n",
            qop=qop,
            nc=nc,
        )

    assert compute("md5") == compute("MD5")  # RFC 7616 §3.3: case-insensitive
    with pytest.raises(LocalProtocolError):
        compute("SHA-1")
    with pytest.raises(LocalProtocolError):
        compute("MD5", qop="auth-conf")
    with pytest.raises(LocalProtocolError):
        compute("MD5", qop="auth", nc=0)


def test_supported_algorithms() -> None:
    assert set(SUPPORTED_ALGORITHMS) >= {"MD5", "MD5-sess", "SHA-256", "SHA-256-sess"}


# ------------------------------------------------- the computation, via client
def test_qop_auth_response_matches_independent_computation() -> None:
    request = make_request()
    response = challenge_response(request, 401, f'Digest realm="{REALM}", nonce="n1", qop="auth"')
    retry = client().authorize(request, response, AuthState())
    assert retry is not None
    auth = only_auth(retry)
    cnonce = auth.get("cnonce")
    assert cnonce is not None
    assert auth.get("response") == expected("md5", nonce="n1", qop="auth", cnonce=cnonce)
    assert auth.get("uri") == URI  # RFC 3261 §22.4: digest-uri is the Request-URI
    assert auth.get("username") == "alice"
    assert auth.get("nc") == "00000001"
    # an absent algorithm means MD5 (RFC 7616 §3.3) and is not invented
    assert auth.get("algorithm") is None


def test_auth_int_hashes_the_body() -> None:
    # RFC 7616 §3.4.3: A2 = Method ":" request-uri ":" H(entity-body)
    body = b"<?xml version='1.0'?><presence/>"
    request = make_request(body=body)
    response = challenge_response(
        request, 401, f'Digest realm="{REALM}", nonce="n-int", qop="auth-int", algorithm=SHA-256'
    )
    retry = client().authorize(request, response, AuthState())
    assert retry is not None
    auth = only_auth(retry)
    assert auth.get("qop") == "auth-int"
    cnonce = auth.get("cnonce") or ""
    assert auth.get("response") == expected(
        "sha256", nonce="n-int", qop="auth-int", cnonce=cnonce, body=body
    )
    assert retry.body == body


def test_auth_int_with_an_empty_body_hashes_the_empty_string() -> None:
    # RFC 3261 §22.4 item 8
    request = make_request(body=b"")
    response = challenge_response(request, 401, f'Digest realm="{REALM}", nonce="e", qop=auth-int')
    retry = client().authorize(request, response, AuthState())
    assert retry is not None
    auth = only_auth(retry)
    assert auth.get("response") == expected(
        "md5", nonce="e", qop="auth-int", cnonce=auth.get("cnonce") or ""
    )


def test_auth_preferred_over_auth_int_unless_asked() -> None:
    request = make_request(body=b"x")
    challenge = f'Digest realm="{REALM}", nonce="q", qop="auth-int,auth"'
    response = challenge_response(request, 401, challenge)
    plain = client().authorize(request, response, AuthState())
    strict = client(prefer_auth_int=True).authorize(request, response, AuthState())
    assert plain is not None
    assert strict is not None
    assert only_auth(plain).get("qop") == "auth"
    assert only_auth(strict).get("qop") == "auth-int"


def test_no_qop_is_the_rfc2069_form() -> None:
    # RFC 2617 §3.2.2.1 / RFC 3261 §22.4: no qop -> response = H(HA1:nonce:HA2),
    # and neither cnonce nor nc is sent
    request = make_request()
    response = challenge_response(request, 401, f'Digest realm="{REALM}", nonce="old-style"')
    retry = client().authorize(request, response, AuthState())
    assert retry is not None
    value = retry.headers.get("Authorization") or ""
    auth = only_auth(retry)
    assert auth.get("response") == expected("md5", nonce="old-style", qop=None)
    assert "cnonce" not in value
    assert "nc=" not in value
    assert "qop" not in value


@pytest.mark.parametrize(
    ("algorithm", "hash_name"),
    [
        ("MD5-sess", "md5"),
        ("SHA-256-sess", "sha256"),
        ("SHA-512-256-sess", "sha512_256"),
        ("SHA-512-256", "sha512_256"),
    ],
)
def test_algorithms_and_sess_variants(algorithm: str, hash_name: str) -> None:
    # RFC 7616 §3.4.2: for -sess, A1 = H(user:realm:pw) ":" nonce ":" cnonce
    request = make_request()
    response = challenge_response(
        request, 401, f'Digest realm="{REALM}", nonce="s1", qop="auth", algorithm={algorithm}'
    )
    retry = client().authorize(request, response, AuthState())
    assert retry is not None
    auth = only_auth(retry)
    cnonce = auth.get("cnonce") or ""
    assert auth.get("algorithm") == algorithm
    assert auth.get("response") == expected(
        hash_name, nonce="s1", qop="auth", cnonce=cnonce, sess=algorithm.endswith("-sess")
    )


def test_algorithm_names_are_case_insensitive() -> None:
    # RFC 7616 §3.3: the algorithm token is case-insensitive; echo it as given
    request = make_request()
    response = challenge_response(
        request, 401, f'Digest realm="{REALM}", nonce="c1", qop="auth", algorithm=sha-256-SESS'
    )
    retry = client().authorize(request, response, AuthState())
    assert retry is not None
    auth = only_auth(retry)
    assert auth.get("algorithm") == "sha-256-SESS"
    assert auth.get("response") == expected(
        "sha256", nonce="c1", qop="auth", cnonce=auth.get("cnonce") or "", sess=True
    )


def test_sess_without_qop_cannot_be_answered() -> None:
    # RFC 2617 §3.2.2: cnonce MUST NOT be sent without qop, yet -sess needs it
    request = make_request()
    response = challenge_response(
        request, 401, f'Digest realm="{REALM}", nonce="x", algorithm=MD5-sess'
    )
    state = AuthState()
    assert client().authorize(request, response, state) is None
    assert state.last_failure == "unsupported-qop"


def test_opaque_is_echoed_quoted_and_absent_when_not_given() -> None:
    request = make_request()
    with_opaque = challenge_response(
        request, 401, f'Digest realm="{REALM}", nonce="o", qop="auth", opaque=""'
    )
    without = challenge_response(request, 401, f'Digest realm="{REALM}", nonce="o", qop="auth"')
    a = client().authorize(request, with_opaque, AuthState())
    b = client().authorize(request, without, AuthState())
    assert a is not None
    assert b is not None
    # RFC 7616 §3.4: opaque echoed unchanged, even when empty
    assert 'opaque=""' in (a.headers.get("Authorization") or "")
    assert "opaque" not in (b.headers.get("Authorization") or "")


def test_header_quoting_follows_rfc7616() -> None:
    request = make_request()
    response = challenge_response(
        request, 401, f'Digest realm="{REALM}", nonce="qq", qop="auth", algorithm=SHA-256'
    )
    retry = client(DigestCredentials('al"ice\\', "pw", REALM)).authorize(
        request, response, AuthState()
    )
    assert retry is not None
    value = retry.headers.get("Authorization") or ""
    assert value.startswith('Digest username="al\\"ice\\\\", realm="example.com", nonce="qq", ')
    assert f'uri="{URI}"' in value
    assert ", algorithm=SHA-256," in value
    assert ", qop=auth, nc=00000001" in value
    assert 'response="' in value
    assert 'cnonce="' in value
    # the quoted-pairs unescape back to the username the hash used
    auth = only_auth(retry)
    assert auth.get("username") == 'al"ice\\'
    assert auth.get("response") == expected(
        "sha256",
        username='al"ice\\',
        password="pw",
        nonce="qq",
        qop="auth",
        cnonce=auth.get("cnonce") or "",
    )


def test_userhash() -> None:
    # RFC 7616 §3.4.4: username = H(unq(username) ":" unq(realm)), userhash=true;
    # the response still uses the plain username
    request = make_request()
    response = challenge_response(
        request,
        401,
        f'Digest realm="{REALM}", nonce="uh", qop="auth", algorithm=SHA-256, userhash=true',
    )
    retry = client().authorize(request, response, AuthState())
    assert retry is not None
    auth = only_auth(retry)
    assert auth.get("username") == h("sha256", f"alice:{REALM}")
    assert auth.get("userhash") == "true"
    assert auth.get("response") == expected(
        "sha256", nonce="uh", qop="auth", cnonce=auth.get("cnonce") or ""
    )


# --------------------------------------------------------- the new request
def test_401_answers_with_authorization_and_407_with_proxy_authorization() -> None:
    # RFC 3261 §22.2 (WWW-Authenticate -> Authorization) and §22.3
    # (Proxy-Authenticate -> Proxy-Authorization)
    request = make_request()
    challenge = f'Digest realm="{REALM}", nonce="k", qop="auth"'
    www = client().authorize(request, challenge_response(request, 401, challenge), AuthState())
    proxy = client().authorize(request, challenge_response(request, 407, challenge), AuthState())
    assert www is not None
    assert proxy is not None
    assert www.headers.count("Authorization") == 1
    assert "Proxy-Authorization" not in www.headers
    assert proxy.headers.count("Proxy-Authorization") == 1
    assert "Authorization" not in proxy.headers


def test_retry_increments_cseq_drops_vias_and_keeps_the_rest() -> None:
    body = b"<presence/>"
    request = make_request(cseq=41, body=body)
    response = challenge_response(request, 401, f'Digest realm="{REALM}", nonce="v", qop="auth"')
    retry = client().authorize(request, response, AuthState())
    assert retry is not None
    # RFC 3261 §22.2: the resubmitted request has a new CSeq (here +1)
    assert str(retry.cseq) == "42 PUBLISH"
    # RFC 3261 §8.1.3.5 / §22.2: a new transaction; the transaction layer
    # adds the top Via with a fresh branch, so none is carried over
    assert "Via" not in retry.headers
    assert retry.method == request.method
    assert retry.uri == request.uri
    assert retry.body == body
    assert retry.version == request.version
    assert retry.headers.keys() == [
        "max-forwards",
        "to",
        "from",
        "call-id",
        "cseq",
        "event",
        "authorization",
    ]
    assert retry.headers.get("Event") == "presence"
    assert retry.headers.get("Call-ID") == "cid-1@example.com"


def test_input_request_is_not_changed() -> None:
    sent = f'Digest username="alice", realm="{REALM}", nonce="old", uri="{URI}", response="00"'
    request = make_request(extra=[("Authorization", sent)])
    before_bytes = request.to_bytes()
    before_items = request.headers.items()
    response = challenge_response(
        request, 401, f'Digest realm="{REALM}", nonce="fresh", stale=true'
    )
    retry = client().authorize(request, response, AuthState())
    assert retry is not None
    assert retry is not request
    assert retry.headers is not request.headers
    assert request.to_bytes() == before_bytes
    assert request.headers.items() == before_items


def test_previous_credentials_for_the_same_realm_are_replaced() -> None:
    other = 'Digest username="bob", realm="other.net", nonce="keep", uri="sip:x", response="11"'
    mine = 'Digest username="alice", realm="example.com", nonce="old", uri="sip:x", response="22"'
    request = make_request(extra=[("Authorization", other), ("Authorization", mine)])
    response = challenge_response(
        request, 401, f'Digest realm="{REALM}", nonce="new", qop="auth", stale=true'
    )
    retry = client().authorize(request, response, AuthState())
    assert retry is not None
    fields = auth_fields(retry)
    assert [(f.realm, f.nonce) for f in fields] == [("other.net", "keep"), (REALM, "new")]


def test_several_realms_are_all_answered() -> None:
    # RFC 3261 §22.3: one credentials field per realm challenged; a forking
    # proxy may merge WWW- and Proxy-Authenticate into one 407 (§16.7 step 6)
    request = make_request()
    response = challenge_response(
        request, 407, 'Digest realm="proxy.example.net", nonce="p1", qop="auth"'
    )
    response = with_fields(
        response,
        ("Proxy-Authenticate", 'Digest realm="edge.example.net", nonce="p2", qop="auth"'),
        ("WWW-Authenticate", f'Digest realm="{REALM}", nonce="u1", qop="auth"'),
        ("Proxy-Authenticate", 'Digest realm="unknown.example.org", nonce="p3"'),
    )
    cl = client(
        ALICE,
        DigestCredentials("alice-p", "pw-p", "proxy.example.net"),
        DigestCredentials("alice-e", "pw-e", "edge.example.net"),
    )
    state = AuthState()
    retry = cl.authorize(request, response, state)
    assert retry is not None
    assert state.last_failure is None
    proxies = auth_fields(retry, "Proxy-Authorization")
    assert [(p.realm, p.get("username")) for p in proxies] == [
        ("proxy.example.net", "alice-p"),
        ("edge.example.net", "alice-e"),
    ]
    assert [(a.realm, a.get("username")) for a in auth_fields(retry)] == [(REALM, "alice")]
    for field_ in proxies:
        assert field_.get("response") == expected(
            "md5",
            username=field_.get("username") or "",
            password="pw-p" if field_.realm == "proxy.example.net" else "pw-e",
            realm=field_.realm or "",
            nonce=field_.nonce or "",
            qop="auth",
            cnonce=field_.get("cnonce") or "",
        )


def test_strongest_algorithm_per_realm_is_chosen() -> None:
    # RFC 8760 §2.4: several challenges for one realm, one per algorithm;
    # answer one of them, here the strongest we support
    request = make_request()
    response = challenge_response(
        request,
        401,
        f'Digest realm="{REALM}", nonce="m", qop="auth", algorithm=MD5',
        f'Digest realm="{REALM}", nonce="s", qop="auth", algorithm=SHA-256',
        f'Digest realm="{REALM}", nonce="z", qop="auth", algorithm=SHA-999',
    )
    retry = client().authorize(request, response, AuthState())
    assert retry is not None
    auth = only_auth(retry)
    assert (auth.get("algorithm"), auth.nonce) == ("SHA-256", "s")

    response = challenge_response(
        request,
        401,
        f'Digest realm="{REALM}", nonce="a", qop="auth", algorithm=SHA-256',
        f'Digest realm="{REALM}", nonce="b", qop="auth", algorithm=SHA-512-256',
    )
    retry = client().authorize(request, response, AuthState())
    assert retry is not None
    assert only_auth(retry).get("algorithm") == "SHA-512-256"


def test_equally_strong_challenges_go_by_header_order() -> None:
    request = make_request()
    response = challenge_response(
        request,
        401,
        f'Digest realm="{REALM}", nonce="first", qop="auth", algorithm=SHA-256-sess',
        f'Digest realm="{REALM}", nonce="second", qop="auth", algorithm=SHA-256',
    )
    retry = client().authorize(request, response, AuthState())
    assert retry is not None
    assert only_auth(retry).nonce == "first"


# --------------------------------------------------------------- failures
def test_unknown_algorithm_only_fails() -> None:
    request = make_request()
    response = challenge_response(
        request, 401, f'Digest realm="{REALM}", nonce="u", qop="auth", algorithm=SHA-1'
    )
    state = AuthState()
    assert client().authorize(request, response, state) is None
    assert state.last_failure == "unsupported-algorithm"


def test_unsupported_qop_only_fails() -> None:
    request = make_request()
    response = challenge_response(
        request, 401, f'Digest realm="{REALM}", nonce="u", qop="auth-conf"'
    )
    state = AuthState()
    assert client().authorize(request, response, state) is None
    assert state.last_failure == "unsupported-qop"


def test_missing_credentials_fails() -> None:
    request = make_request()
    response = challenge_response(request, 401, 'Digest realm="elsewhere.org", nonce="u"')
    state = AuthState()
    assert client().authorize(request, response, state) is None
    assert state.last_failure == "no-credentials"


def test_credential_store_prefers_the_exact_realm_over_the_wildcard() -> None:
    wildcard = DigestCredentials("anyone", "pw")
    store = CredentialStore([wildcard, ALICE])
    assert store.lookup(REALM) is ALICE
    assert store.lookup("elsewhere.org") is wildcard
    assert store.lookup("Example.com") is wildcard  # realms compare exactly
    assert CredentialStore([ALICE]).lookup("elsewhere.org") is None
    assert len(store) == 2

    request = make_request()
    response = challenge_response(request, 401, 'Digest realm="elsewhere.org", nonce="w"')
    retry = DigestClient(store, random.Random(1)).authorize(request, response, AuthState())
    assert retry is not None
    assert only_auth(retry).get("username") == "anyone"


def test_response_without_challenge_fails() -> None:
    request = make_request()
    state = AuthState()
    assert client().authorize(request, make_response(request, 401), state) is None
    assert state.last_failure == "no-challenge"
    assert client().authorize(request, make_response(request, 200), state) is None
    assert state.last_failure == "not-a-challenge"


@pytest.mark.parametrize(
    "challenge",
    [
        'Digest realm="example.com, nonce="x"',  # unterminated quote
        'Digest realm="example.com", qop="auth"',  # no nonce
        'Digest nonce="x"',  # no realm
        'Digest realm="example.com", nonce="x", nonce="y"',  # duplicate (RFC 7235 §2.1)
        "Digest realm",  # parameter without value
    ],
)
def test_malformed_challenge_fails_without_raising(challenge: str) -> None:
    request = make_request()
    state = AuthState()
    assert client().authorize(request, challenge_response(request, 401, challenge), state) is None
    assert state.last_failure == "bad-challenge"


def test_malformed_challenge_next_to_a_good_one_is_skipped() -> None:
    request = make_request()
    response = challenge_response(
        request, 401, 'Digest realm="broken', f'Digest realm="{REALM}", nonce="g", qop="auth"'
    )
    state = AuthState()
    retry = client().authorize(request, response, state)
    assert retry is not None
    assert state.last_failure is None
    assert only_auth(retry).nonce == "g"


def test_other_schemes_are_not_answered() -> None:
    request = make_request()
    response = challenge_response(request, 401, 'Basic realm="example.com"')
    state = AuthState()
    assert client().authorize(request, response, state) is None
    assert state.last_failure == "unsupported-scheme"


def test_realm_failure_reported_before_field_failures() -> None:
    request = make_request()
    response = challenge_response(
        request, 401, 'Basic realm="x"', 'Digest realm="elsewhere.org", nonce="n"'
    )
    state = AuthState()
    assert client().authorize(request, response, state) is None
    assert state.last_failure == "no-credentials"


def test_failure_reasons_are_the_documented_tokens() -> None:
    assert "nonce-reused" in FAILURE_REASONS
    assert "bad-challenge" in FAILURE_REASONS
    assert "no-credentials" in FAILURE_REASONS


# ------------------------------------------------------------ loop safety
def test_same_nonce_twice_ends_the_chain() -> None:
    # The challenge we answered came back unchanged: the answer was refused,
    # and answering it again would loop
    request = make_request()
    cl = client()
    state = AuthState()
    challenge = f'Digest realm="{REALM}", nonce="once", qop="auth"'
    retry = cl.authorize(request, challenge_response(request, 401, challenge), state)
    assert retry is not None
    assert cl.authorize(retry, challenge_response(retry, 401, challenge), state) is None
    assert state.last_failure == "nonce-reused"
    # even if the server claims the nonce is stale
    stale = f'Digest realm="{REALM}", nonce="once", qop="auth", stale=TRUE'
    assert cl.authorize(retry, challenge_response(retry, 401, stale), state) is None
    assert state.last_failure == "nonce-reused"


def test_stale_true_with_a_fresh_nonce_is_answered() -> None:
    # RFC 7616 §3.3 stale / §3.2.1: the nonce expired, the password was
    # right; retry with the new nonce without asking the user
    request = make_request()
    cl = client()
    state = AuthState()
    first = cl.authorize(
        request,
        challenge_response(request, 401, f'Digest realm="{REALM}", nonce="n1", qop="auth"'),
        state,
    )
    assert first is not None
    second = cl.authorize(
        first,
        challenge_response(
            first, 401, f'Digest realm="{REALM}", nonce="n2", qop="auth", stale=true'
        ),
        state,
    )
    assert second is not None
    assert state.last_failure is None
    assert str(second.cseq) == "12 PUBLISH"
    auth = only_auth(second)
    assert auth.nonce == "n2"
    assert auth.get("nc") == "00000001"  # nc is per nonce (RFC 7616 §3.4)


def test_fresh_nonce_without_stale_after_an_answer_means_rejected() -> None:
    # RFC 7616 §3.3: stale absent after our answer -> the credentials are wrong
    request = make_request()
    cl = client()
    state = AuthState()
    first = cl.authorize(
        request, challenge_response(request, 401, f'Digest realm="{REALM}", nonce="n1"'), state
    )
    assert first is not None
    again = challenge_response(first, 401, f'Digest realm="{REALM}", nonce="n2"')
    assert cl.authorize(first, again, state) is None
    assert state.last_failure == "credentials-rejected"
    # the rejected protection space is not used up front any more
    assert cl.preauthorize(make_request()) is None


def test_rounds_are_bounded_even_when_every_nonce_is_stale() -> None:
    request = make_request()
    cl = client()
    state = AuthState(max_rounds=3)
    current = request
    for i in range(3):
        challenge = f'Digest realm="{REALM}", nonce="n{i}", qop="auth", stale=true'
        nxt = cl.authorize(current, challenge_response(current, 401, challenge), state)
        assert nxt is not None
        current = nxt
    challenge = f'Digest realm="{REALM}", nonce="n9", qop="auth", stale=true'
    assert cl.authorize(current, challenge_response(current, 401, challenge), state) is None
    assert state.last_failure == "too-many-rounds"


def test_new_realm_in_a_later_round_is_answered() -> None:
    # a proxy (407) first, then the UAS (401): RFC 3261 §22.3
    request = make_request()
    cl = client(ALICE, DigestCredentials("p", "pp", "proxy.net"))
    state = AuthState()
    first = cl.authorize(
        request, challenge_response(request, 407, 'Digest realm="proxy.net", nonce="p"'), state
    )
    assert first is not None
    second = cl.authorize(
        first, challenge_response(first, 401, f'Digest realm="{REALM}", nonce="u"'), state
    )
    assert second is not None
    assert [f.realm for f in auth_fields(second, "Proxy-Authorization")] == ["proxy.net"]
    assert [f.realm for f in auth_fields(second)] == [REALM]


def test_cseq_that_cannot_grow_fails() -> None:
    request = make_request(cseq=2**32 - 1)
    state = AuthState()
    response = challenge_response(request, 401, f'Digest realm="{REALM}", nonce="x"')
    assert client().authorize(request, response, state) is None
    assert state.last_failure == "cseq-exhausted"


def test_request_without_cseq_is_a_local_error() -> None:
    request = make_request()
    response = challenge_response(request, 401, f'Digest realm="{REALM}", nonce="x"')
    broken = Request("PUBLISH", URI, [(n, v) for n, v in request.headers.items() if n != "CSeq"])
    with pytest.raises(LocalProtocolError):
        client().authorize(broken, response, AuthState())


# ------------------------------------------------------ preemptive use
def test_preauthorize_reuses_the_nonce_with_an_incrementing_nc() -> None:
    # RFC 7616 §3.4: nc counts the requests sent with one nonce; hex, 8 digits
    cl = client()
    request = make_request()
    response = challenge_response(
        request, 401, f'Digest realm="{REALM}", nonce="keep", qop="auth", opaque="op"'
    )
    first = cl.authorize(request, response, AuthState())
    assert first is not None
    assert only_auth(first).get("nc") == "00000001"
    assert cl.cached_realms() == [REALM]

    cnonces = {only_auth(first).get("cnonce")}
    for expected_nc in ("00000002", "00000003"):
        later = make_request(cseq=20, body=b"<doc/>")
        signed = cl.preauthorize(later)
        assert signed is not None
        auth = only_auth(signed)
        assert auth.nonce == "keep"
        assert auth.get("nc") == expected_nc
        assert auth.get("opaque") == "op"
        cnonce = auth.get("cnonce") or ""
        cnonces.add(cnonce)
        assert auth.get("response") == expected(
            "md5", nonce="keep", qop="auth", nc=expected_nc, cnonce=cnonce
        )
        # a new request, not a retry: CSeq and Vias are the caller's
        assert str(signed.cseq) == "20 PUBLISH"
        assert signed.headers.count("Via") == 2
        assert later.headers.get("Authorization") is None
    assert len(cnonces) == 3  # a fresh cnonce per request


def test_preauthorize_without_a_cached_nonce_returns_none() -> None:
    cl = client()
    assert cl.preauthorize(make_request()) is None
    request = make_request()
    cl.authorize(
        request, challenge_response(request, 401, f'Digest realm="{REALM}", nonce="n"'), AuthState()
    )
    assert cl.preauthorize(make_request(), realm="elsewhere.org") is None
    assert cl.preauthorize(make_request(), realm=REALM) is not None
    cl.forget(REALM)
    assert cl.preauthorize(make_request()) is None


def test_preauthorize_keeps_the_proxy_header_kind() -> None:
    cl = client()
    request = make_request()
    cl.authorize(
        request, challenge_response(request, 407, f'Digest realm="{REALM}", nonce="n"'), AuthState()
    )
    signed = cl.preauthorize(make_request())
    assert signed is not None
    assert "Authorization" not in signed.headers
    assert only_auth(signed, "Proxy-Authorization").nonce == "n"


def test_nonce_cache_is_bounded_and_can_be_cleared() -> None:
    cl = DigestClient([DigestCredentials("any", "pw")], random.Random(3), max_cached=2)
    for realm in ("r1", "r2", "r3"):
        request = make_request()
        response = challenge_response(request, 401, f'Digest realm="{realm}", nonce="n"')
        assert cl.authorize(request, response, AuthState()) is not None
    assert cl.cached_realms() == ["r2", "r3"]  # the oldest went first
    cl.forget()
    assert cl.cached_realms() == []


def test_nc_continues_when_a_later_chain_meets_the_same_nonce() -> None:
    cl = client()
    challenge = f'Digest realm="{REALM}", nonce="shared", qop="auth"'
    for expected_nc in ("00000001", "00000002"):
        request = make_request()
        retry = cl.authorize(request, challenge_response(request, 401, challenge), AuthState())
        assert retry is not None
        assert only_auth(retry).get("nc") == expected_nc


def test_preauthorized_request_rechallenged_with_its_own_nonce_fails() -> None:
    # the nonces a request already carries count as answered in its chain
    cl = client()
    request = make_request()
    challenge = f'Digest realm="{REALM}", nonce="pre", qop="auth"'
    cl.authorize(request, challenge_response(request, 401, challenge), AuthState())
    signed = cl.preauthorize(make_request())
    assert signed is not None
    state = AuthState()
    assert cl.authorize(signed, challenge_response(signed, 401, challenge), state) is None
    assert state.last_failure == "nonce-reused"


def test_preauthorized_request_with_an_expired_nonce_gets_one_answer() -> None:
    # the up-front credentials were not this chain's answer to a challenge,
    # so a fresh nonce is answered even without stale=true (servers differ)
    cl = client()
    request = make_request()
    cl.authorize(
        request, challenge_response(request, 401, f'Digest realm="{REALM}", nonce="a"'), AuthState()
    )
    signed = cl.preauthorize(make_request())
    assert signed is not None
    state = AuthState()
    retry = cl.authorize(
        signed, challenge_response(signed, 401, f'Digest realm="{REALM}", nonce="b"'), state
    )
    assert retry is not None
    assert [f.nonce for f in auth_fields(retry)] == ["b"]


# ------------------------------------------------------------- randomness
def test_cnonce_is_deterministic_for_a_seeded_random() -> None:
    request = make_request()
    response = challenge_response(request, 401, f'Digest realm="{REALM}", nonce="d", qop="auth"')
    one = client(seed=42).authorize(request, response, AuthState())
    two = client(seed=42).authorize(request, response, AuthState())
    three = client(seed=43).authorize(request, response, AuthState())
    assert one is not None
    assert two is not None
    assert three is not None
    assert one.to_bytes() == two.to_bytes()
    assert only_auth(one).get("cnonce") != only_auth(three).get("cnonce")
    expected_cnonce = f"{random.Random(42).getrandbits(128):032x}"
    assert only_auth(one).get("cnonce") == expected_cnonce


# ------------------------------------------------------------- credentials
def test_credentials_hide_the_password_and_refuse_line_breaks() -> None:
    assert "secret" not in repr(ALICE)
    with pytest.raises(LocalProtocolError):
        DigestCredentials("alice\r\nX-Evil: 1", "pw")
    with pytest.raises(LocalProtocolError):
        DigestCredentials("alice", "\ud800")


def test_module_is_sans_io() -> None:
    tree = ast.parse(inspect.getsource(digest_module))
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            imported.add(node.module.split(".")[0])
    assert not imported & {"asyncio", "socket", "time", "ssl", "selectors"}
