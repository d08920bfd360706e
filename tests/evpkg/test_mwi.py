"""message-summary bodies (RFC 3842 §5.2)."""

from __future__ import annotations

import re
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pua.evpkg import message_summary
from pua.evpkg.mwi import MESSAGE_CONTEXT_CLASSES


def test_rfc3842_style_example() -> None:
    assert message_summary(True, account="sip:alice@example.com", voice=(2, 8, 0, 2)) == (
        "Messages-Waiting: yes\r\nMessage-Account: sip:alice@example.com\r\n"
        "Voice-Message: 2/8 (0/2)\r\n"
    )


def test_no_messages_status_line_only() -> None:
    assert message_summary(False) == "Messages-Waiting: no\r\n"


def test_other_classes_in_canonical_order_and_case_insensitive() -> None:
    body = message_summary(
        True,
        voice=(1, 0),
        others={"NONE": (0, 0), "text-message": (3, 1), "Fax-Message": (0, 4, 0, 1)},
    )
    assert body.split("\r\n") == [
        "Messages-Waiting: yes",
        "Voice-Message: 1/0",
        "Fax-Message: 0/4 (0/1)",
        "Text-Message: 3/1",
        "None: 0/0",
        "",
    ]


def test_voice_given_through_others() -> None:
    assert message_summary(True, others={"voice-message": (5, 6)}).endswith(
        "Voice-Message: 5/6\r\n"
    )


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"voice": (-1, 0)}, r"^voice: "),
        ({"voice": (True, 0)}, r"^voice: "),
        ({"voice": (1, 2, 3)}, r"^voice: "),
        ({"voice": (1,)}, r"^voice: "),
        ({"others": {"fax-message": (0, -2)}}, r"^others\[fax-message\]: "),
        ({"others": {"email-message": (1, 1)}}, r"^others: unknown"),
        ({"voice": (1, 1), "others": {"Voice-Message": (1, 1)}}, r"^others: .* twice"),
        ({"account": "sip:alice@example.com\r\nVoice-Message: 9/9"}, r"^account: "),
        ({"account": "sip:alice@example.com x"}, r"^account: "),
        ({"account": ""}, r"^account: "),
        ({"account": "alice"}, r"^account: "),
    ],
)
def test_refuses(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        message_summary(True, **kwargs)


COUNT = st.integers(min_value=0, max_value=10**6)
COUNTS = st.one_of(st.tuples(COUNT, COUNT), st.tuples(COUNT, COUNT, COUNT, COUNT))
LINE = re.compile(r"([A-Za-z-]+): (\d+)/(\d+)(?: \((\d+)/(\d+)\))?\Z")


@given(
    waiting=st.booleans(),
    others=st.dictionaries(st.sampled_from(list(MESSAGE_CONTEXT_CLASSES)), COUNTS),
)
def test_counts_read_back(waiting: bool, others: dict[str, tuple[int, ...]]) -> None:
    body = message_summary(waiting, others=others)  # type: ignore[arg-type]
    assert body.endswith("\r\n")
    status, *lines = body[:-2].split("\r\n")
    assert status == f"Messages-Waiting: {'yes' if waiting else 'no'}"
    read: dict[str, tuple[int, ...]] = {}
    for line in lines:
        match = LINE.match(line)
        assert match is not None
        name, *numbers = match.groups()
        read[name.lower()] = tuple(int(n) for n in numbers if n is not None)
    assert read == others
    assert [name.lower() for name in read] == [c for c in MESSAGE_CONTEXT_CLASSES if c in others]
