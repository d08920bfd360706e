"""pua: a Presence User Agent for SIP.

It sends PUBLISH (RFC 3903) and SUBSCRIBE (RFC 6665) on behalf of applications.
This release holds the SIP foundation: the sans-IO wire codec (:mod:`pua.sip`),
the non-INVITE transaction layer (:mod:`pua.transaction`), the asyncio
transports and RFC 3263 resolution (:mod:`pua.transport`) and the endpoint
that joins them (:mod:`pua.endpoint`).
"""

__version__ = "0.1.0.dev0"

__all__ = ["__version__"]
