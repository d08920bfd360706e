"""Codec speed: parse + header access + serialise, one core.

Prints one ``name: value`` figure per line.  Each figure is the best of
several interleaved rounds (the machine is shared and its speed drifts;
interleaving puts the codec and the baseline in the same conditions), and
the baseline, a 30-line bytes splitter with no checks (``baseline_mini``),
runs in the same rounds so that the ratio is comparable across machines.

Usage: python bench/bench_codec.py [iterations] [rounds]
"""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from baseline_mini import mini_parse
from messages import OK_200, PUBLISH
from pua.sip import Response, parse_message


def pua_publish(data: bytes) -> bytes:
    m = parse_message(data)
    m.top_via.branch  # noqa: B018
    m.cseq.seq  # noqa: B018
    m.call_id  # noqa: B018
    m.from_.tag  # noqa: B018
    return m.to_bytes()


def pua_response(data: bytes) -> bytes:
    m = parse_message(data)
    assert isinstance(m, Response)
    m.status  # noqa: B018
    m.top_via.branch  # noqa: B018
    m.cseq.method  # noqa: B018
    m.call_id  # noqa: B018
    m.from_.tag  # noqa: B018
    m.to.tag  # noqa: B018
    return m.to_bytes()


def mini_publish(data: bytes) -> bytes:
    m = mini_parse(data)
    m.param(b"via", b"branch")
    m.get(b"cseq").split()  # type: ignore[union-attr]
    m.get(b"call-id")
    m.param(b"from", b"tag")
    return m.serialise()


def mini_response(data: bytes) -> bytes:
    m = mini_parse(data)
    int(m.first.split(b" ", 2)[1])
    m.param(b"via", b"branch")
    m.get(b"cseq").split()  # type: ignore[union-attr]
    m.get(b"call-id")
    m.param(b"from", b"tag")
    m.param(b"to", b"tag")
    return m.serialise()


def rate(fn: Callable[[bytes], object], data: bytes, n: int) -> float:
    t0 = time.perf_counter()
    for _ in range(n):
        fn(data)
    return n / (time.perf_counter() - t0)


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 20_000
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 7
    cases: dict[str, tuple[Callable[[bytes], object], bytes]] = {
        "publish_pas_per_s": (pua_publish, PUBLISH),
        "ok200_pas_per_s": (pua_response, OK_200),
        "baseline_mini_publish_pas_per_s": (mini_publish, PUBLISH),
        "baseline_mini_ok200_pas_per_s": (mini_response, OK_200),
        "publish_parse_only_per_s": (parse_message, PUBLISH),
        "baseline_mini_publish_parse_only_per_s": (mini_parse, PUBLISH),
    }
    runs: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(rounds):
        for name, (fn, data) in cases.items():
            runs[name].append(rate(fn, data, n))
    best = {name: max(values) for name, values in runs.items()}
    print(f"publish_bytes: {len(PUBLISH)}")
    print(f"ok200_bytes: {len(OK_200)}")
    for name, value in best.items():
        print(f"{name}: {value:.0f}")
        print(f"{name}_median: {statistics.median(runs[name]):.0f}")
    print(
        "publish_vs_baseline: "
        f"{best['publish_pas_per_s'] / best['baseline_mini_publish_pas_per_s']:.2f}"
    )
    print(
        f"ok200_vs_baseline: {best['ok200_pas_per_s'] / best['baseline_mini_ok200_pas_per_s']:.2f}"
    )


if __name__ == "__main__":
    main()
