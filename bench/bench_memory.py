"""Memory per publication: what pua keeps for each publication once its
requests are done, at 100k publications.

The sans-IO PUBLISH engine is driven directly (no sockets, so no transient
network buffers): each presentity ``sip:user{i}@127.0.0.1`` is published
once with a distinct PIDF body of about 250 bytes, the request is answered
with a 200 OK carrying ``SIP-ETag: e{i}`` and ``Expires: 3600``, and the
outcomes are drained.  Inputs are made one at a time and dropped, so what
stays is what the engine holds: the record, its presentity, processed body
and entity-tag, the index entries and the refresh-heap entry.

Two figures, each from its own fresh child process (tracemalloc's own
bookkeeping would inflate the resident size):

* ``rss_bytes_per_publication``: resident set size (``/proc/self/statm``)
  after minus before, after ``gc.collect()``, divided by N;
* ``tracemalloc_bytes_per_publication``: the Python allocations still
  traced after minus before, divided by N.

The baseline, in the same run and measured the same two ways: the raw data
alone (presentity ``str``, body ``bytes``, entity-tag ``str``, held flat in
one list), so the engine's own overhead is visible.  A ``sys.getsizeof``
breakdown of one publication record and its fields follows.

Rounds are interleaved (raw, then engine); each figure is the smallest of
the rounds, with the median beside it.

Usage: python bench/bench_memory.py [publications] [rounds]
"""

from __future__ import annotations

import random
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common
from pua import PRESENCE_EVENT, UL_PUBLISH, PuaConfig, PublishInfo
from pua.evpkg.registry import EventRegistry
from pua.sip import make_response
from pua.ua.publish import Publication, PublishEngine

#: what one publication should cost at most, printed beside the figures
TARGET_BYTES = 1024


def presentity(i: int) -> str:
    return f"sip:user{i}@127.0.0.1"


def pidf(uri: str, i: int) -> str:
    """A realistic PIDF document of about 250 bytes, distinct per presentity."""
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<presence xmlns="urn:ietf:params:xml:ns:pidf" entity="{uri}">'
        f'<tuple id="t{i:08x}"><status><basic>open</basic></status>'
        f"<contact>sip:user{i}@192.0.2.10:5060</contact></tuple></presence>\n"
    )


def new_engine() -> PublishEngine:
    return PublishEngine(PuaConfig(), EventRegistry(), random.Random(1))


def publish(engine: PublishEngine, i: int, prefix: str = "user") -> None:
    """Publish presentity ``i``, answer its PUBLISH with a 200, drain."""
    uri = f"sip:{prefix}{i}@127.0.0.1"
    engine.publish(
        PublishInfo(
            pres_uri=uri,
            event=PRESENCE_EVENT,
            source_flag=UL_PUBLISH,
            body=pidf(uri, i),
            expires=3600,
        ),
        common.NOW,
    )
    for out in engine.requests_to_send():
        response = make_response(
            out.request,
            200,
            to_tag="x",
            headers=[("SIP-ETag", f"e{i}"), ("Expires", "3600")],
        )
        engine.handle_response(out.token, response, common.NOW, local=False)
    for outcome in engine.events():
        if not outcome.ok or outcome.etag is None:
            raise SystemExit(f"publication {i} failed: {outcome}")


def fill_raw(count: int) -> list[str | bytes]:
    raw: list[str | bytes] = []
    for i in range(count):
        uri = presentity(i)
        raw += (uri, pidf(uri, i).encode(), f"e{i}")
    return raw


def breakdown(engine: PublishEngine) -> dict[str, float]:
    """``sys.getsizeof`` of what one publication owns, objects shared with
    another publication (the event package, ``None``, small ints, the
    content type) left out."""
    records = list(engine.publications())
    one, other = records[len(records) // 2], records[len(records) // 2 + 1]
    sizes = common.record_sizes(one, other, Publication.__slots__)
    by_uri = engine._by_uri
    entry = by_uri[one.pres_uri]
    if isinstance(entry, list):  # several publications of one presentity
        sizes["index_list"] = sys.getsizeof(entry)
    sizes["index_dict_share"] = sys.getsizeof(by_uri) / len(by_uri)
    return common.finish_breakdown(sizes, engine._deadlines._heap)


def body_bytes(count: int) -> list[str]:
    """The size of the last presentity's body."""
    return [f"body_bytes: {len(pidf(presentity(count - 1), count - 1).encode())}"]


def main() -> None:
    bench = common.MemoryBench(
        "publications", "publication", TARGET_BYTES, fill_raw, new_engine, publish, breakdown
    )
    common.memory_main(__doc__, __file__, bench, notes=body_bytes)


if __name__ == "__main__":
    main()
