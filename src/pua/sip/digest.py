"""HTTP Digest authentication for SIP, client side (RFC 3261 §22, RFC 8760).

A UAS or proxy that wants to know who is sending a request answers it with
401 (``WWW-Authenticate``) or 407 (``Proxy-Authenticate``); the client sends
the request again with an ``Authorization`` or ``Proxy-Authorization`` field
that proves it knows the password (RFC 3261 §22.2, §22.3).  This module
computes those answers: the digest of RFC 2617 and RFC 7616 with the MD5,
SHA-256 and SHA-512-256 algorithms and their ``-sess`` variants, the ``auth``
and ``auth-int`` qualities of protection, and the qop-less form of RFC 2069
that RFC 3261 §22.4 still allows.

Like the rest of :mod:`pua.sip` it is sans-IO: it reads a request and a
response and returns a new request; client nonces come from an injected
``random.Random`` (pass ``random.SystemRandom()`` outside tests).

What a caller keeps:

* a :class:`DigestClient`, one per account / user agent, which holds the
  credentials and the nonces the servers handed out, so that later requests
  can carry credentials up front (:meth:`DigestClient.preauthorize`,
  RFC 7616 §3.4);
* an :class:`AuthState` per logical request, created with the first attempt
  and passed to every :meth:`DigestClient.authorize` call for its retries.
  It remembers which nonces this chain already answered, so that a server
  that keeps rejecting us ends the chain (``None``) instead of a loop.  The
  state is explicit rather than kept inside the client under a Call-ID key
  so that its lifetime is exactly the caller's retry loop and nothing has to
  be evicted.

Failures are not exceptions: ``authorize`` returns ``None`` and sets
:attr:`AuthState.last_failure` to one of the reason tokens in
:data:`FAILURE_REASONS`.  Only a caller error (a request without a valid
CSeq, credentials that cannot be written) raises, and then only
:class:`~pua.errors.LocalProtocolError`.

Not supported: the ``username*`` extended notation of RFC 7616 §3.4.4
(usernames are always sent as UTF-8 quoted-strings), ``Authentication-Info``
checking (mutual authentication, RFC 7616 §3.5), and the ``domain``
parameter (which would scope preemptive credentials to URIs).
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Iterable
from dataclasses import dataclass, field

from pua.errors import LocalProtocolError, SipParseError
from pua.sip.fields import Challenge, CSeq, format_challenge, parse_challenge
from pua.sip.headers import Headers
from pua.sip.message import Request, Response

__all__ = [
    "FAILURE_REASONS",
    "SUPPORTED_ALGORITHMS",
    "AuthState",
    "CredentialStore",
    "DigestClient",
    "DigestCredentials",
    "authorization_value",
    "digest_response",
]

#: Largest nonce-count: ``nc`` is exactly 8 hex digits (RFC 7616 §3.4).
MAX_NONCE_COUNT = 0xFFFFFFFF
#: Largest CSeq sequence number (RFC 3261 §8.1.1.5: 32 bits).
_MAX_CSEQ = 2**32 - 1

#: The reason tokens :attr:`AuthState.last_failure` may hold.  They are
#: stable: callers and metrics may key on them.
FAILURE_REASONS = frozenset(
    {
        "not-a-challenge",  # the response is not a 401 or 407
        "no-challenge",  # a 401/407 without WWW-/Proxy-Authenticate
        "bad-challenge",  # a challenge that does not parse or lacks realm/nonce
        "unsupported-scheme",  # only non-Digest challenges (Basic, ...)
        "unsupported-algorithm",  # only algorithms we do not implement
        "unsupported-qop",  # only qop values we do not implement
        "no-credentials",  # nothing in the store for the challenged realm
        "nonce-reused",  # this chain already answered that (realm, nonce)
        "credentials-rejected",  # a new nonce without stale=true: wrong password
        "too-many-rounds",  # the chain hit AuthState.max_rounds
        "cseq-exhausted",  # the CSeq cannot be incremented (2**32-1)
    }
)


# ------------------------------------------------------------- algorithms
@dataclass(frozen=True, slots=True)
class _Algorithm:
    """One digest algorithm of the IANA "HTTP Digest Hash Algorithms"
    registry (RFC 7616 §6.1); ``strength`` orders them for RFC 8760 §2.4."""

    name: str
    hash_name: str
    strength: int
    sess: bool  # a "-sess" variant (RFC 7616 §3.4.2)

    def hexdigest(self, data: bytes) -> str:
        # MD5 is not used for anything but the protocol's own arithmetic
        return hashlib.new(self.hash_name, data, usedforsecurity=False).hexdigest()


def _algorithms() -> dict[str, _Algorithm]:
    table: dict[str, _Algorithm] = {}
    for name, hash_name, strength in (
        ("MD5", "md5", 1),
        ("SHA-256", "sha256", 2),
        ("SHA-512-256", "sha512_256", 3),
    ):
        # SHA-512/256 comes from OpenSSL; an interpreter without it simply
        # cannot answer such challenges (they are skipped as unsupported)
        if hash_name not in hashlib.algorithms_available:
            continue
        table[name] = _Algorithm(name, hash_name, strength, False)
        table[name + "-SESS"] = _Algorithm(name + "-sess", hash_name, strength, True)
    return table


#: Algorithms by upper-cased name (RFC 7616 §3.3: names are case-insensitive).
_ALGORITHMS = _algorithms()

#: The algorithm names this interpreter can answer, canonical spelling.
SUPPORTED_ALGORITHMS = tuple(alg.name for alg in _ALGORITHMS.values())


def _encode(text: str) -> bytes:
    """UTF-8 (RFC 7616 §4 ``charset``); text decoded from the wire with
    surrogate escapes gets its original bytes back."""
    try:
        return text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        raise LocalProtocolError(f"digest input is not encodable: {text!r}") from None


def _response(
    alg: _Algorithm,
    *,
    username: str,
    realm: str,
    password: str,
    method: str,
    uri: str,
    nonce: str,
    qop: str | None,
    nc: str,
    cnonce: str,
    body: bytes,
) -> str:
    def h(text: str) -> str:
        return alg.hexdigest(_encode(text))

    # RFC 7616 §3.4.2: A1 = unq(username) ":" unq(realm) ":" passwd, and for
    # the -sess variants H(that) ":" unq(nonce) ":" unq(cnonce)
    ha1 = h(f"{username}:{realm}:{password}")
    if alg.sess:
        ha1 = h(f"{ha1}:{nonce}:{cnonce}")
    # RFC 7616 §3.4.3: A2 = Method ":" request-uri, plus ":" H(entity-body)
    # for auth-int; RFC 3261 §22.4 item 8: an empty body hashes the empty string
    if qop == "auth-int":
        ha2 = h(f"{method}:{uri}:{alg.hexdigest(body)}")
    else:
        ha2 = h(f"{method}:{uri}")
    if qop is None:
        # RFC 2069 compatibility (RFC 2617 §3.2.2.1, RFC 3261 §22.4)
        return h(f"{ha1}:{nonce}:{ha2}")
    # RFC 7616 §3.4.1
    return h(f"{ha1}:{nonce}:{nc}:{cnonce}:{qop}:{ha2}")


def digest_response(
    algorithm: str | None,
    *,
    username: str,
    realm: str,
    password: str,
    method: str,
    uri: str,
    nonce: str,
    qop: str | None = None,
    nc: int = 1,
    cnonce: str = "",
    body: bytes = b"",
) -> str:
    """The ``response`` value of a Digest answer (RFC 7616 §3.4.1).

    ``algorithm`` ``None`` means MD5 (RFC 7616 §3.3); ``qop`` is ``"auth"``,
    ``"auth-int"`` or ``None`` (the RFC 2069 form, which takes neither ``nc``
    nor ``cnonce``).  This is the arithmetic alone, exposed for tests and
    for callers that assemble the header themselves; raises
    ``LocalProtocolError`` for an algorithm or qop it does not implement.
    """
    alg = _ALGORITHMS.get((algorithm or "MD5").upper())
    if alg is None:
        raise LocalProtocolError(f"unsupported digest algorithm {algorithm!r}")
    if qop not in (None, "auth", "auth-int"):
        raise LocalProtocolError(f"unsupported qop {qop!r}")
    if not 0 < nc <= MAX_NONCE_COUNT:
        raise LocalProtocolError(f"nonce-count out of range: {nc}")
    return _response(
        alg,
        username=username,
        realm=realm,
        password=password,
        method=method,
        uri=uri,
        nonce=nonce,
        qop=qop,
        nc=f"{nc:08x}",
        cnonce=cnonce,
        body=body,
    )


# ------------------------------------------------------------ credentials
@dataclass(frozen=True, slots=True)
class DigestCredentials:
    """A username and password, for one realm or (``realm=None``) for any.

    The password is left out of ``repr`` so that it does not end up in logs.
    """

    username: str
    password: str = field(repr=False)
    realm: str | None = None

    def __post_init__(self) -> None:
        # These go into quoted-strings and hash inputs: a line break would
        # split the header field, a lone surrogate cannot be encoded.
        for what, value in (("username", self.username), ("password", self.password)):
            if any(c in value for c in "\r\n\0"):
                raise LocalProtocolError(f"digest {what} holds a line break or NUL")
            try:
                value.encode("utf-8")
            except UnicodeEncodeError:
                raise LocalProtocolError(f"digest {what} is not valid Unicode") from None


class CredentialStore:
    """Credentials by realm: the exact realm first, then the wildcard entry
    (``realm=None``).  Adding credentials for a realm replaces the old ones."""

    __slots__ = ("_by_realm", "_wildcard")

    def __init__(self, credentials: Iterable[DigestCredentials] = ()) -> None:
        self._by_realm: dict[str, DigestCredentials] = {}
        self._wildcard: DigestCredentials | None = None
        for item in credentials:
            self.add(item)

    def add(self, credentials: DigestCredentials) -> None:
        if credentials.realm is None:
            self._wildcard = credentials
        else:
            self._by_realm[credentials.realm] = credentials

    def lookup(self, realm: str) -> DigestCredentials | None:
        """The credentials to answer a challenge for ``realm``, or ``None``.

        Realms are compared exactly: RFC 7616 §3.3 makes the realm an opaque
        quoted-string chosen by the server.
        """
        found = self._by_realm.get(realm)
        return self._wildcard if found is None else found

    def __len__(self) -> int:
        return len(self._by_realm) + (self._wildcard is not None)


# -------------------------------------------------------------- challenges
@dataclass(frozen=True, slots=True)
class _Kind:
    """A challenge header and the credentials header that answers it."""

    challenge: str
    credentials: str  # display name
    key: str  # canonical key of ``credentials``


#: RFC 3261 §22.2 (UAS, 401) and §22.3 (proxy, 407).  A forking proxy may
#: put both kinds into one response (RFC 3261 §16.7 step 6).
_WWW = _Kind("www-authenticate", "Authorization", "authorization")
_PROXY = _Kind("proxy-authenticate", "Proxy-Authorization", "proxy-authorization")
_KINDS = (_WWW, _PROXY)


@dataclass(frozen=True, slots=True)
class _Plan:
    """How to answer one Digest challenge we know we can answer."""

    algorithm: _Algorithm
    algorithm_token: str | None  # as the challenge spelled it; None if absent
    qop: str | None
    realm: str
    nonce: str
    opaque: str | None
    userhash: bool
    stale: bool


def _plan(challenge: Challenge, prefer_auth_int: bool) -> _Plan | str:
    """A plan for answering ``challenge``, or the reason token why not."""
    if challenge.scheme.lower() != "digest":
        return "unsupported-scheme"
    names = [name for name, _ in challenge.params]
    realm, nonce = challenge.realm, challenge.nonce
    # RFC 7235 §2.1: each parameter name occurs at most once per challenge;
    # RFC 7616 §3.3: realm and nonce are required
    if len(set(names)) != len(names) or realm is None or nonce is None:
        return "bad-challenge"
    token = challenge.get("algorithm")
    # RFC 7616 §3.3: "If the algorithm parameter is not present, it is
    # assumed to be 'MD5'"
    alg = _ALGORITHMS.get((token or "MD5").upper())
    if alg is None:
        return "unsupported-algorithm"
    offered = challenge.get("qop")
    qop: str | None
    if offered is None:
        # RFC 2617 §3.2.2: cnonce MUST NOT be sent without qop, and the
        # -sess A1 needs one, so a -sess challenge without qop is unanswerable
        if alg.sess:
            return "unsupported-qop"
        qop = None
    else:
        # RFC 7616 §3.3: a quoted list of one or more tokens
        options = {part.strip().lower() for part in offered.split(",")}
        if "auth" in options and not (prefer_auth_int and "auth-int" in options):
            qop = "auth"
        elif "auth-int" in options:
            qop = "auth-int"
        else:
            return "unsupported-qop"
    return _Plan(
        algorithm=alg,
        algorithm_token=token,
        qop=qop,
        realm=realm,
        nonce=nonce,
        opaque=challenge.get("opaque"),
        # RFC 7616 §3.3: stale and userhash are case-insensitive flags
        userhash=(challenge.get("userhash") or "").lower() == "true",
        stale=(challenge.get("stale") or "").lower() == "true",
    )


def _render(
    plan: _Plan,
    credentials: DigestCredentials,
    *,
    method: str,
    uri: str,
    body: bytes,
    nc: int,
    cnonce: str,
) -> str:
    """The credentials field value answering ``plan`` (RFC 7616 §3.4)."""
    nc_text = f"{nc:08x}"
    response = _response(
        plan.algorithm,
        username=credentials.username,
        realm=plan.realm,
        password=credentials.password,
        method=method,
        uri=uri,
        nonce=plan.nonce,
        qop=plan.qop,
        nc=nc_text,
        cnonce=cnonce,
        body=body,
    )
    username = credentials.username
    if plan.userhash:
        # RFC 7616 §3.4.4: username = H(unq(username) ":" unq(realm)); the
        # response above is still computed from the plain username
        username = plan.algorithm.hexdigest(_encode(f"{username}:{plan.realm}"))
    # RFC 7616 §3.4: username, realm, nonce, uri, response, cnonce and
    # opaque are quoted-strings; algorithm, qop and nc are tokens
    params = [
        ("username", username, True),
        ("realm", plan.realm, True),
        ("nonce", plan.nonce, True),
        ("uri", uri, True),
        ("response", response, True),
    ]
    if plan.algorithm_token is not None:
        params.append(("algorithm", plan.algorithm_token, False))
    if plan.qop is not None:
        params.append(("cnonce", cnonce, True))
    if plan.opaque is not None:
        # RFC 7616 §3.4: opaque is echoed unchanged when the challenge had one
        params.append(("opaque", plan.opaque, True))
    if plan.qop is not None:
        params += [("qop", plan.qop, False), ("nc", nc_text, False)]
    if plan.userhash:
        params.append(("userhash", "true", False))
    return format_challenge("Digest", params)


def authorization_value(
    challenge: Challenge,
    credentials: DigestCredentials,
    *,
    method: str,
    uri: str,
    body: bytes = b"",
    nc: int = 1,
    cnonce: str = "",
    prefer_auth_int: bool = False,
) -> str:
    """The ``Authorization`` / ``Proxy-Authorization`` value answering one
    parsed Digest ``challenge`` with a given nonce-count and client nonce.

    The building block of :class:`DigestClient`, exposed so that the RFC
    examples can be checked with their own ``cnonce``.  Raises
    ``LocalProtocolError`` (message: a :data:`FAILURE_REASONS` token) if the
    challenge cannot be answered.
    """
    plan = _plan(challenge, prefer_auth_int)
    if isinstance(plan, str):
        raise LocalProtocolError(plan)
    if not 0 < nc <= MAX_NONCE_COUNT:
        raise LocalProtocolError(f"nonce-count out of range: {nc}")
    return _render(plan, credentials, method=method, uri=uri, body=body, nc=nc, cnonce=cnonce)


# ------------------------------------------------------------------ state
@dataclass(slots=True)
class AuthState:
    """What one logical request remembers across its authentication retries.

    Create one with the first attempt and pass it to every
    :meth:`DigestClient.authorize` call for that request's retries, then drop
    it.  It is what makes ``authorize`` end a chain instead of looping:

    * a (realm, nonce) this chain already answered is never answered again
      (``nonce-reused``), since the same challenge twice means the server
      refused the answer;
    * a realm this chain already answered is answered again only for
      ``stale=true`` (RFC 7616 §3.3: otherwise "the username and/or password
      are invalid"; ``credentials-rejected``);
    * at most ``max_rounds`` retries in all (``too-many-rounds``), against a
      server that marks every nonce stale.

    ``last_failure`` is ``None`` after a successful ``authorize`` and a
    :data:`FAILURE_REASONS` token after one that returned ``None``.
    """

    max_rounds: int = 5
    rounds: int = 0
    last_failure: str | None = None
    #: (credentials header key, realm, nonce) sent in this chain
    used_nonces: set[tuple[str, str, str]] = field(default_factory=set)
    #: (credentials header key, realm) answered by ``authorize`` in this chain
    answered: set[tuple[str, str]] = field(default_factory=set)


@dataclass(slots=True)
class _Cached:
    """The latest nonce of one protection space and its last nonce-count."""

    plan: _Plan
    nc: int


@dataclass(frozen=True, slots=True)
class _Answer:
    kind: _Kind
    plan: _Plan
    credentials: DigestCredentials
    nc: int


def _sent_credentials(request: Request) -> set[tuple[str, str, str]]:
    """(header key, realm, nonce) of every Digest credentials field already
    in ``request``; fields that do not parse are ignored."""
    out = set()
    for kind in _KINDS:
        for text in request.headers.get_all(kind.key):
            realm_nonce = _realm_nonce(text, kind.key)
            if realm_nonce is not None:
                out.add((kind.key, *realm_nonce))
    return out


def _realm_nonce(text: str, what: str) -> tuple[str, str] | None:
    try:
        parsed = parse_challenge(text, what)
    except SipParseError:
        return None
    if parsed.scheme.lower() != "digest" or parsed.realm is None or parsed.nonce is None:
        return None
    return parsed.realm, parsed.nonce


def _copy_request(
    request: Request,
    *,
    cseq: CSeq | None,
    drop_vias: bool,
    replace: set[tuple[str, str]],
    add: list[tuple[str, str]],
) -> Request:
    """A new request with the same method, URI, body and fields except:
    CSeq set to ``cseq`` (if given), Vias dropped (if asked), credentials
    fields for the (header key, realm) pairs in ``replace`` removed, and the
    ``add`` fields appended."""
    fields: list[tuple[str, str]] = []
    for key, (name, value) in zip(request.headers.keys(), request.headers.items(), strict=True):
        if key == "via" and drop_vias:
            continue
        if key == "cseq" and cseq is not None:
            fields.append((name, str(cseq)))
            continue
        if key in ("authorization", "proxy-authorization") and replace:
            realm_nonce = _realm_nonce(value, key)
            if realm_nonce is not None and (key, realm_nonce[0]) in replace:
                continue
        fields.append((name, value))
    fields += add
    return Request(request.method, request.uri, Headers(fields), request.body, request.version)


# ----------------------------------------------------------------- client
class DigestClient:
    """Answers Digest challenges for requests we send (RFC 3261 §22).

    Holds the credential store and, per protection space (credentials
    header, realm), the latest nonce the server handed out with the
    nonce-count last used for it, so later requests can be authorized up
    front (:meth:`preauthorize`).  ``rng`` supplies the client nonces.

    ``prefer_auth_int``: when a challenge offers both ``auth`` and
    ``auth-int``, answer with ``auth-int`` (integrity of the body) instead
    of ``auth``, which is what most servers expect.  ``max_cached`` bounds
    the nonce cache; the oldest protection space is dropped first.
    """

    __slots__ = ("_cache", "_max_cached", "_prefer_auth_int", "_rng", "_store")

    def __init__(
        self,
        credentials: CredentialStore | Iterable[DigestCredentials],
        rng: random.Random,
        *,
        prefer_auth_int: bool = False,
        max_cached: int = 32,
    ) -> None:
        self._store = (
            credentials
            if isinstance(credentials, CredentialStore)
            else CredentialStore(credentials)
        )
        self._rng = rng
        self._prefer_auth_int = prefer_auth_int
        self._max_cached = max_cached
        #: (credentials header key, realm) -> latest nonce; oldest first
        self._cache: dict[tuple[str, str], _Cached] = {}

    @property
    def credentials(self) -> CredentialStore:
        return self._store

    def _cnonce(self) -> str:
        # RFC 7616 §3.4: an opaque quoted string chosen by the client; 128
        # random bits keep chosen-plaintext attacks off (RFC 7616 §5.11)
        return f"{self._rng.getrandbits(128):032x}"

    def _remember(self, key: tuple[str, str], plan: _Plan, nc: int) -> None:
        self._cache.pop(key, None)
        self._cache[key] = _Cached(plan, nc)
        while len(self._cache) > self._max_cached:
            del self._cache[next(iter(self._cache))]

    # -- answering a challenge ---------------------------------------------
    def authorize(self, request: Request, response: Response, state: AuthState) -> Request | None:
        """The request to send in answer to a 401/407 ``response``, or ``None``.

        ``request`` is the request ``response`` answers; it is not changed.
        The new request has the same method, Request-URI, fields and body,
        except (RFC 3261 §22.2, §22.3, §8.1.3.5):

        * CSeq is incremented by one: it is a new request of the same dialog
          or registration and needs a new transaction;
        * every Via is removed: the transaction layer adds a new top Via
          with a new branch when it sends the request;
        * for each realm answered, an ``Authorization`` (from
          ``WWW-Authenticate``) or ``Proxy-Authorization`` (from
          ``Proxy-Authenticate``) field replaces the one this request had
          for that realm, if any; credentials for other realms are kept.

        Each realm the response challenges and the store has credentials for
        is answered once, with the strongest algorithm on offer for it
        (RFC 8760 §2.4 leaves the choice among supported algorithms to
        local policy; equally strong ones go by header order, the server's
        preference).  ``state`` carries the chain's memory (see
        :class:`AuthState`).  ``None`` means no realm could be answered;
        ``state.last_failure`` says why.
        """
        state.last_failure = None
        if response.status not in (401, 407):
            state.last_failure = "not-a-challenge"
            return None
        # The nonces in the request we sent count as used, including ones
        # added up front by preauthorize (RFC 7616 §3.4)
        state.used_nonces |= _sent_credentials(request)

        header_failures: list[str] = []
        groups: dict[tuple[_Kind, str], list[_Plan | str]] = {}
        for kind in _KINDS:
            for text in response.headers.get_all(kind.challenge):
                try:
                    challenge = parse_challenge(text, kind.challenge)
                except SipParseError:
                    header_failures.append("bad-challenge")
                    continue
                plan = _plan(challenge, self._prefer_auth_int)
                realm = challenge.realm
                if isinstance(plan, str) and plan in ("bad-challenge", "unsupported-scheme"):
                    header_failures.append(plan)
                elif realm is not None:
                    groups.setdefault((kind, realm), []).append(plan)
        if not groups and not header_failures:
            state.last_failure = "no-challenge"
            return None

        answers: list[_Answer] = []
        failures: list[str] = []
        for (kind, realm), options in groups.items():
            outcome = self._choose(kind, realm, options, state)
            if isinstance(outcome, str):
                failures.append(outcome)
            else:
                answers.append(outcome)
        if not answers:
            # a reason about a realm we could otherwise have answered says
            # more than one about a field we could never use
            state.last_failure = failures[0] if failures else header_failures[0]
            return None
        if state.rounds >= state.max_rounds:
            state.last_failure = "too-many-rounds"
            return None

        try:
            cseq = request.cseq
        except SipParseError as exc:
            raise LocalProtocolError(f"request has no valid CSeq: {exc}") from None
        if cseq.seq >= _MAX_CSEQ:
            state.last_failure = "cseq-exhausted"
            return None

        method, uri, body = request.method, request.uri, request.body
        fields = []
        for answer in answers:
            cnonce = self._cnonce() if answer.plan.qop is not None else ""
            value = _render(
                answer.plan,
                answer.credentials,
                method=method,
                uri=uri,
                body=body,
                nc=answer.nc,
                cnonce=cnonce,
            )
            fields.append((answer.kind.credentials, value))
        new = _copy_request(
            request,
            cseq=CSeq(cseq.seq + 1, cseq.method),
            drop_vias=True,
            replace={(a.kind.key, a.plan.realm) for a in answers},
            add=fields,
        )
        # commit only now that the answer exists
        state.rounds += 1
        for answer in answers:
            space = (answer.kind.key, answer.plan.realm)
            state.answered.add(space)
            state.used_nonces.add((*space, answer.plan.nonce))
            self._remember(space, answer.plan, answer.nc)
        return new

    def _choose(
        self, kind: _Kind, realm: str, options: list[_Plan | str], state: AuthState
    ) -> _Answer | str:
        """The answer for one realm's challenges, or why there is none."""
        plans = [p for p in options if isinstance(p, _Plan)]
        if not plans:
            reason = options[0]
            assert isinstance(reason, str)
            return reason
        credentials = self._store.lookup(realm)
        if credentials is None:
            return "no-credentials"
        # max() keeps the first of equals: header order breaks ties
        plan = max(plans, key=lambda p: p.algorithm.strength)
        space = (kind.key, realm)
        if (*space, plan.nonce) in state.used_nonces:
            # the challenge we answered came back: the answer was refused
            self._cache.pop(space, None)
            return "nonce-reused"
        if space in state.answered and not plan.stale:
            # RFC 7616 §3.3 stale: absent or false after our answer means
            # "the username and/or password are invalid"
            self._cache.pop(space, None)
            return "credentials-rejected"
        # RFC 7616 §3.4: nc counts the requests sent with one nonce; it only
        # continues if the server handed out the nonce we already hold
        cached = self._cache.get(space)
        nc = cached.nc + 1 if cached is not None and cached.plan.nonce == plan.nonce else 1
        if nc > MAX_NONCE_COUNT:
            self._cache.pop(space, None)
            return "nonce-reused"
        return _Answer(kind, plan, credentials, nc)

    # -- credentials up front ------------------------------------------------
    def preauthorize(self, request: Request, realm: str | None = None) -> Request | None:
        """``request`` with credentials computed from cached nonces, or ``None``
        if there is no cached nonce (for ``realm``, or at all) to use.

        RFC 7616 §3.4 / RFC 3261 §22.3: a client may reuse a nonce for later
        requests, incrementing the nonce-count, and so skip a 401/407 round
        trip.  ``realm`` ``None`` uses every cached protection space; name
        the realm when the request goes to a server other than the one that
        issued the nonces, since each credentials field names the user.
        The request's CSeq and Vias are left alone (it is a new request, not
        a retry); a credentials field it already has for the same realm is
        replaced.  If the server has dropped the nonce it answers 401/407
        (usually with stale=true) and :meth:`authorize` takes over.
        """
        fields: list[tuple[str, str]] = []
        replace: set[tuple[str, str]] = set()
        updates: list[tuple[tuple[str, str], _Plan, int]] = []
        for space, cached in self._cache.items():
            if realm is not None and space[1] != realm:
                continue
            credentials = self._store.lookup(space[1])
            nc = cached.nc + 1
            if credentials is None or nc > MAX_NONCE_COUNT:
                continue
            kind = _WWW if space[0] == _WWW.key else _PROXY
            cnonce = self._cnonce() if cached.plan.qop is not None else ""
            value = _render(
                cached.plan,
                credentials,
                method=request.method,
                uri=request.uri,
                body=request.body,
                nc=nc,
                cnonce=cnonce,
            )
            fields.append((kind.credentials, value))
            replace.add(space)
            updates.append((space, cached.plan, nc))
        if not fields:
            return None
        for space, plan, nc in updates:
            self._cache[space] = _Cached(plan, nc)
        return _copy_request(request, cseq=None, drop_vias=False, replace=replace, add=fields)

    def cached_realms(self) -> list[str]:
        """Realms with a cached nonce, oldest first."""
        return list(dict.fromkeys(realm for _, realm in self._cache))

    def forget(self, realm: str | None = None) -> None:
        """Drop the cached nonces of ``realm`` (all of them for ``None``)."""
        if realm is None:
            self._cache.clear()
        else:
            for space in [s for s in self._cache if s[1] == realm]:
                del self._cache[space]
