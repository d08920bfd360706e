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

import argparse
import gc
import json
import os
import random
import statistics
import subprocess
import sys
import tracemalloc
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT.parent / "src"))

from pua import PRESENCE_EVENT, UL_PUBLISH, PuaConfig, PublishInfo  # noqa: E402
from pua.evpkg.registry import EventRegistry  # noqa: E402
from pua.sip import make_response  # noqa: E402
from pua.ua.publish import Publication, PublishEngine  # noqa: E402

#: what one publication should cost at most, printed beside the figures
TARGET_BYTES = 1024
WARM_UP = 1000
NOW = 1000.0
PAGE = os.sysconf("SC_PAGE_SIZE")


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


def rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * PAGE


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
        NOW,
    )
    for out in engine.requests_to_send():
        response = make_response(
            out.request,
            200,
            to_tag="x",
            headers=[("SIP-ETag", f"e{i}"), ("Expires", "3600")],
        )
        engine.handle_response(out.token, response, NOW, local=False)
    for outcome in engine.events():
        if not outcome.ok or outcome.etag is None:
            raise SystemExit(f"publication {i} failed: {outcome}")


def fill_engine(count: int) -> PublishEngine:
    engine = new_engine()
    for i in range(count):
        publish(engine, i)
    return engine


def fill_raw(count: int) -> list[str | bytes]:
    raw: list[str | bytes] = []
    for i in range(count):
        uri = presentity(i)
        raw += (uri, pidf(uri, i).encode(), f"e{i}")
    return raw


def child(kind: str, method: str, count: int) -> dict[str, Any]:
    """One measurement in this (fresh) process."""
    engine = new_engine()
    for i in range(WARM_UP):  # pages in lxml, the caches, the code paths
        publish(engine, i, prefix="warm")
    fill_raw(WARM_UP)
    gc.collect()
    if method == "tracemalloc":
        tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0] if method == "tracemalloc" else rss()
    held: object = fill_engine(count) if kind == "engine" else fill_raw(count)
    gc.collect()
    after = tracemalloc.get_traced_memory()[0] if method == "tracemalloc" else rss()
    result: dict[str, Any] = {"bytes": after - before}
    if isinstance(held, PublishEngine):
        if len(held) != count:
            raise SystemExit(f"engine holds {len(held)} publications, expected {count}")
        if method == "rss":
            result["breakdown"] = breakdown(held)
    return result


def breakdown(engine: PublishEngine) -> dict[str, float]:
    """``sys.getsizeof`` of what one publication owns, objects shared with
    another publication (the event package, ``None``, small ints, the
    content type) left out."""
    records = list(engine.publications())
    one, other = records[len(records) // 2], records[len(records) // 2 + 1]
    sizes: dict[str, float] = {"record": sys.getsizeof(one)}
    seen = {id(one)}
    for name in Publication.__slots__:
        value = getattr(one, name)
        if value is getattr(other, name, None) or id(value) in seen:
            continue  # shared, or counted under another name
        seen.add(id(value))
        sizes[f"field_{name}"] = sys.getsizeof(value)
    by_uri = engine._by_uri
    entry = by_uri[one.pres_uri]
    if isinstance(entry, list):  # several publications of one presentity
        sizes["index_list"] = sys.getsizeof(entry)
    sizes["index_dict_share"] = sys.getsizeof(by_uri) / len(by_uri)
    heap = engine._heap
    sizes["heap_entry_tuple"] = sys.getsizeof(heap[0])
    sizes["heap_list_share"] = sys.getsizeof(heap) / len(heap)
    sizes["total"] = sum(sizes.values())
    return sizes


def run_child(kind: str, method: str, count: int) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, __file__, str(count), "--child", kind, method],
        check=True,
        capture_output=True,
        text=True,
    )
    result: dict[str, Any] = json.loads(out.stdout)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("publications", nargs="?", type=int, default=100_000)
    parser.add_argument("rounds", nargs="?", type=int, default=3)
    parser.add_argument("--child", nargs=2, metavar=("KIND", "METHOD"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    count = args.publications
    if args.child:
        print(json.dumps(child(args.child[0], args.child[1], count)))
        return

    cases = [(kind, method) for kind in ("raw", "engine") for method in ("rss", "tracemalloc")]
    per: dict[tuple[str, str], list[float]] = {case: [] for case in cases}
    sizes: dict[str, float] = {}
    for _ in range(args.rounds):
        for kind, method in cases:
            result = run_child(kind, method, count)
            per[(kind, method)].append(result["bytes"] / count)
            sizes = result.get("breakdown", sizes)

    sample = presentity(count - 1)
    print(f"publications: {count}")
    print(f"rounds: {args.rounds}")
    print(f"body_bytes: {len(pidf(sample, count - 1).encode())}")
    print(f"target_bytes_per_publication: {TARGET_BYTES}")
    names = {"engine": "", "raw": "baseline_raw_"}
    for (kind, method), values in per.items():
        name = f"{names[kind]}{method}_bytes_per_publication"
        print(f"{name}: {min(values):.0f}")
        print(f"{name}_median: {statistics.median(values):.0f}")
    for method in ("rss", "tracemalloc"):
        overhead = min(per[("engine", method)]) - min(per[("raw", method)])
        print(f"engine_overhead_{method}_bytes_per_publication: {overhead:.0f}")
    print(f"rss_vs_target: {min(per[('engine', 'rss')]) / TARGET_BYTES:.2f}")
    for name, size in sizes.items():
        print(f"getsizeof_{name}: {size:.0f}")


if __name__ == "__main__":
    main()
