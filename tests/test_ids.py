"""Run ids: unique, time-ordered, valid UUIDs, distinct across forks."""

from __future__ import annotations

import os
import uuid

from sluice.schemas import new_id


def test_ids_are_version_7_uuids_and_unique() -> None:
    ids = [new_id() for _ in range(50_000)]
    assert len(set(ids)) == len(ids)
    parsed = uuid.UUID(ids[0])
    assert parsed.version == 7
    assert parsed.variant == uuid.RFC_4122


def test_ids_are_canonical_text_and_carry_their_millisecond() -> None:
    import time

    before = time.time_ns() // 1_000_000
    ids = [new_id() for _ in range(1000)]
    after = time.time_ns() // 1_000_000
    for text in ids:
        parsed = uuid.UUID(text)
        assert str(parsed) == text
        assert before <= parsed.int >> 80 <= after


def test_ids_sort_by_creation_time_across_milliseconds() -> None:
    import time

    first = new_id()
    time.sleep(0.002)
    assert new_id() > first


def test_a_forked_child_does_not_repeat_the_parents_ids() -> None:
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # child
        os.close(read_end)
        os.write(write_end, ",".join(new_id() for _ in range(100)).encode())
        os._exit(0)
    os.close(write_end)
    parent_ids = {new_id() for _ in range(100)}
    chunks = []
    while chunk := os.read(read_end, 65536):
        chunks.append(chunk)
    os.close(read_end)
    os.waitpid(pid, 0)
    child_ids = set(b"".join(chunks).decode().split(","))
    assert len(child_ids) == 100
    assert not parent_ids & child_ids
