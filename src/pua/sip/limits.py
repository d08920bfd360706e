"""Hard limits on what the codec accepts, each with the reason for its number.

Every buffer the codec fills is bounded by one of these, so that a peer can
never make pua hold more than a known amount of memory per connection.
"""

from __future__ import annotations

#: Largest whole message (start line + headers + body), in bytes.  65,535 is
#: the largest UDP payload an IPv4 datagram can carry, so nothing bigger can
#: reach us over UDP, and Kamailio uses the same figure (BUF_SIZE) for TCP
#: reads.  Presence documents are a few KiB; RFC 3261 §18.1.1 sends anything
#: near the path MTU over TCP anyway.
MAX_MESSAGE_SIZE = 65_535

#: Largest header block (everything before the blank line), in bytes.  Half
#: the message limit: no legitimate request needs more head than body room,
#: and the stream framer must give up on a head that never ends long before
#: it has buffered a whole message's worth of garbage.
MAX_HEAD_SIZE = 32_768

#: Most header fields (after unfolding) in one message.  A typical PUBLISH
#: has 10-15; a request that crossed several proxies gains a Via and a
#: Record-Route per hop (Max-Forwards caps hops at 70).  256 leaves room for
#: that while keeping per-message work bounded.
MAX_HEADER_FIELDS = 256

#: Longest single header field (after unfolding), in characters.  Long
#: route sets are usually split into one field per hop; 8 KiB still holds a
#: comma-joined route set of ~70 hops of 100 characters.
MAX_FIELD_LENGTH = 8_192

#: Largest body the stream framer will wait for (a Content-Length above this
#: is refused with 413 before reading it).
MAX_BODY_SIZE = MAX_MESSAGE_SIZE
