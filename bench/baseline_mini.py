"""A deliberately minimal bytes parser: the speed ceiling the codec is
measured against in the same run.  It checks nothing, frames nothing and
knows no grammar; it is not a design, only a yardstick (the survey's
"mini": split the head, split lines, lower-cased names, lazy params)."""

from __future__ import annotations


class MiniMessage:
    __slots__ = ("body", "first", "headers")

    def __init__(self, first: bytes, headers: list[tuple[bytes, bytes]], body: bytes) -> None:
        self.first = first
        self.headers = headers
        self.body = body

    def get(self, name: bytes) -> bytes | None:
        for key, value in self.headers:
            if key == name:
                return value
        return None

    def param(self, name: bytes, param: bytes) -> bytes | None:
        value = self.get(name)
        if value is None:
            return None
        for part in value.split(b";")[1:]:
            key, _, val = part.partition(b"=")
            if key.strip().lower() == param:
                return val.strip()
        return None

    def serialise(self) -> bytes:
        lines = [self.first] + [k + b": " + v for k, v in self.headers]
        return b"\r\n".join(lines) + b"\r\n\r\n" + self.body


def mini_parse(data: bytes) -> MiniMessage:
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    headers = []
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        headers.append((name.strip().lower(), value.strip()))
    return MiniMessage(lines[0], headers, body)
