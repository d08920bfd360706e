"""Building requests and responses the way RFC 3261 §8 says a UA must."""

from __future__ import annotations

from pua.sip.headers import Headers
from pua.sip.message import Request, Response

__all__ = ["make_response"]

#: Header fields a response copies from its request (RFC 3261 §8.2.6.2).
_COPIED = ("via", "from", "to", "call-id", "cseq")


def make_response(
    request: Request,
    status: int,
    reason: str | None = None,
    *,
    to_tag: str | None = None,
    headers: list[tuple[str, str]] | None = None,
    body: bytes = b"",
) -> Response:
    """A response to ``request``: Via (all of them, in order), From, To,
    Call-ID and CSeq copied; ``to_tag`` added to To if it has none
    (RFC 3261 §8.2.6.2: MUST for any response but 100)."""
    fields = []
    add_tag = bool(to_tag) and status > 100 and request.to.tag is None
    source = request.headers
    for key, field in zip(source._key_list(), source._fields, strict=True):
        if key in _COPIED:
            if add_tag and key == "to":
                name, sep, value = field
                value = value.rstrip(" \t")
                fields.append((name, sep, f"{value};tag={to_tag}"))
            else:
                fields.append(field)
    out = Headers._parsed(fields, None, {})
    for name, value in headers or ():
        out.add(name, value)
    return Response(status, reason, out, body)
