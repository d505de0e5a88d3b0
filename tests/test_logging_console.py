"""The buffered console writer: line format, and no line lost or reordered across threads."""

from __future__ import annotations

import io
import threading
import time

from sluice.logging.console import ConsoleWriter


def test_a_line_shows_local_time_to_the_millisecond() -> None:
    writer = ConsoleWriter(io.StringIO())
    created = 1_700_000_000.0421
    clock = time.strftime("%H:%M:%S", time.localtime(1_700_000_000))
    assert writer.line(created, 20, "Task run 'a'", "done") == (
        f"{clock}.042 | INFO    | Task run 'a' - done"
    )
    assert writer.line(created + 1.9995, 30, None, "late").startswith(
        time.strftime("%H:%M:%S", time.localtime(1_700_000_002)) + ".041 | WARNING | late"
    )


def test_lines_from_many_threads_are_written_once_each_in_order() -> None:
    stream = io.StringIO()
    writer = ConsoleWriter(stream, interval=0.001, max_lines=50)

    def produce(name: str) -> None:
        for index in range(2000):
            writer.write(f"{name} {index}", urgent=index % 500 == 0)

    producers = [threading.Thread(target=produce, args=(f"t{n}",)) for n in range(4)]
    for thread in producers:
        thread.start()
    for thread in producers:
        thread.join()
    writer.flush()
    lines = stream.getvalue().splitlines()
    assert len(lines) == 4 * 2000
    for n in range(4):
        mine = [int(line.split()[1]) for line in lines if line.startswith(f"t{n} ")]
        assert mine == list(range(2000))
