"""Memory per SUBSCRIBE dialog: what pua keeps for each subscription once
its dialog is established, at 100k dialogs.

The sans-IO SUBSCRIBE engine is driven directly (no sockets, so no
transient network buffers): watcher ``sip:watcher-user{i}@127.0.0.1``
subscribes to presentity ``sip:user{i}@127.0.0.1`` for 3600 s; the
SUBSCRIBE is answered with a 200 OK (To tag ``n{i}``,
``Contact: <sip:127.0.0.1:5070>``, ``Expires: 3600``), then a NOTIFY built
by hand for that dialog (From/To swapped with the tags, same Call-ID,
``CSeq: 1 NOTIFY``, ``Event: presence``,
``Subscription-State: active;expires=3600``, a small PIDF body) is handed
to ``handle_notify`` and must get a 200; the outcome and the NOTIFY event
are drained.  Inputs are made one at a time and dropped, so what stays is
what the engine holds: the record, its URIs, the dialog's Call-ID, tags
and remote target, the index entries and the refresh-heap entry.  The local
Contact URI is one string shared by every subscription (one endpoint), as
an application passes it.

Two figures, each from its own fresh child process (tracemalloc's own
bookkeeping would inflate the resident size):

* ``rss_bytes_per_dialog``: resident set size (``/proc/self/statm``) after
  minus before, after ``gc.collect()``, divided by N;
* ``tracemalloc_bytes_per_dialog``: the Python allocations still traced
  after minus before, divided by N.

The baseline, in the same run and measured the same two ways: the raw data
alone (presentity, watcher, Call-ID, local tag, remote tag and remote
Contact URI, each a ``str`` of the same length as the engine's, held flat
in one list), so the engine's own overhead is visible.  A
``sys.getsizeof`` breakdown of one ``Subscription`` and its fields
follows.

Rounds are interleaved (raw, then engine); each figure is the smallest of
the rounds, with the median beside it.

Usage: python bench/bench_memory_subscribe.py [dialogs] [rounds]
"""

from __future__ import annotations

import random
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common
from pua import PRESENCE_EVENT, UL_PUBLISH, PuaConfig, SubscribeInfo
from pua.evpkg.registry import EventRegistry
from pua.sip import Headers, Request, make_response
from pua.sip.ids import IdGenerator
from pua.ua.events import NotifyReceived, SubscribeOutcome
from pua.ua.subscribe import SubscribeEngine, Subscription

#: what one dialog should cost at most, printed beside the figures
TARGET_BYTES = 1536
#: pua's own Contact: one endpoint, one string for every subscription
CONTACT = "sip:127.0.0.1:5060"
#: the notifier's Contact, in the 200 and in the NOTIFY
NOTIFIER = "sip:127.0.0.1:5070"


def presentity(i: int, prefix: str = "user") -> str:
    return f"sip:{prefix}{i}@127.0.0.1"


def watcher(i: int, prefix: str = "user") -> str:
    return f"sip:watcher-{prefix}{i}@127.0.0.1"


def fresh(text: str) -> str:
    """An equal ``str`` that is a new object (not the interned constant)."""
    return (text + ".")[:-1]


def pidf(uri: str, i: int) -> bytes:
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<presence xmlns="urn:ietf:params:xml:ns:pidf" entity="{uri}">'
        f'<tuple id="t{i}"><status><basic>open</basic></status></tuple></presence>\n'
    ).encode()


def new_engine() -> SubscribeEngine:
    return SubscribeEngine(PuaConfig(), EventRegistry(), random.Random(1))


def notify_for(request: Request, remote_tag: str, i: int) -> Request:
    """The notifier's first NOTIFY in the dialog that ``request`` (the
    initial SUBSCRIBE) made: From/To swapped, the notifier's tag on From."""
    pres = request.to.uri
    return Request(
        "NOTIFY",
        request.contacts[0].uri,
        Headers(
            [
                ("Via", f"SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK-n{i}"),
                ("Max-Forwards", "70"),
                ("From", f"<{pres}>;tag={remote_tag}"),
                ("To", request.headers.get("From") or ""),
                ("Call-ID", request.call_id),
                ("CSeq", "1 NOTIFY"),
                ("Contact", f"<{NOTIFIER}>"),
                ("Event", "presence"),
                ("Subscription-State", "active;expires=3600"),
                ("Content-Type", "application/pidf+xml"),
            ]
        ),
        pidf(pres, i),
    )


def establish(engine: SubscribeEngine, i: int, prefix: str = "user") -> None:
    """Subscribe, answer the SUBSCRIBE 200, hand in the NOTIFY, drain."""
    engine.subscribe(
        SubscribeInfo(
            pres_uri=presentity(i, prefix),
            watcher_uri=watcher(i, prefix),
            contact=CONTACT,
            event=PRESENCE_EVENT,
            expires=3600,
            source_flag=UL_PUBLISH,
        ),
        common.NOW,
    )
    remote_tag = f"n{i}"
    for out in engine.requests_to_send():
        response = make_response(
            out.request,
            200,
            to_tag=remote_tag,
            headers=[("Contact", f"<{NOTIFIER}>"), ("Expires", "3600")],
        )
        engine.handle_response(out.token, response, common.NOW, local=False)
        answer = engine.handle_notify(notify_for(out.request, remote_tag, i), common.NOW)
        if answer.status != 200:
            raise SystemExit(f"dialog {i}: NOTIFY answered {answer.status} {answer.reason}")
    outcomes = notifies = 0
    for event in engine.events():
        if isinstance(event, SubscribeOutcome):
            if not event.ok or event.remote_tag != remote_tag:
                raise SystemExit(f"dialog {i} failed: {event}")
            outcomes += 1
        elif isinstance(event, NotifyReceived) and event.state == "active":
            notifies += 1
    if (outcomes, notifies) != (1, 1):
        raise SystemExit(f"dialog {i}: {outcomes} outcomes, {notifies} NOTIFYs")


def fill_raw(count: int) -> list[str]:
    """The same strings, each made anew: presentity, watcher, Call-ID (the
    engine's shape: 24 hex digits, no host as the engine here has none),
    local tag, remote tag, remote Contact URI."""
    ids = IdGenerator(random.Random(2))
    raw: list[str] = []
    for i in range(count):
        raw += (
            presentity(i),
            watcher(i),
            ids.call_id(),
            ids.tag(),
            f"n{i}",
            fresh(NOTIFIER),
        )
    return raw


def breakdown(engine: SubscribeEngine) -> dict[str, float]:
    """``sys.getsizeof`` of what one subscription owns, objects shared with
    another subscription (the event package, ``None``, small ints, empty
    tuples, the local Contact) left out."""
    records = list(engine.subscriptions())
    one, other = records[len(records) // 2], records[len(records) // 2 + 1]
    sizes = common.record_sizes(one, other, Subscription.__slots__)
    by_dialog = engine._by_dialog
    sizes["dialog_key_tuple"] = sys.getsizeof((one.call_id, one.local_tag))
    sizes["dialog_dict_share"] = sys.getsizeof(by_dialog) / len(by_dialog)
    by_pair = engine._by_pair
    pair = (one.pres_uri, one.watcher_uri)
    sizes["pair_key_tuple"] = sys.getsizeof(pair)
    sizes["pair_list"] = sys.getsizeof(by_pair[pair])
    sizes["pair_dict_share"] = sys.getsizeof(by_pair) / len(by_pair)
    return common.finish_breakdown(sizes, engine._deadlines._heap)


def main() -> None:
    bench = common.MemoryBench(
        "dialogs", "dialog", TARGET_BYTES, fill_raw, new_engine, establish, breakdown
    )
    common.memory_main(__doc__, __file__, bench)


if __name__ == "__main__":
    main()
