"""Interactive and slow streams: stdin from a pipe is decoded as it arrives (a pause in the
input yields the complete lines so far), a file or a fast pipe in full chunks."""

import io
import os
import select
import subprocess
import sys
import threading
import time
from types import SimpleNamespace

import pytest

from lstm_nlp.data import textio
from lstm_nlp.data.textio import read_input_lines
from lstm_nlp.errors import DataError


@pytest.fixture
def pipe():
    """(stdin-like stream over a pipe's read end, write end); both ends closed afterwards."""
    r, w = os.pipe()
    reader = os.fdopen(r, "rb", buffering=0)
    state = {"w": w}

    def close_writer():
        if state["w"] is not None:
            os.close(state["w"])
            state["w"] = None

    yield SimpleNamespace(buffer=reader), w, close_writer
    close_writer()
    reader.close()


def test_lines_split_across_reads_crlf_and_a_last_line_without_newline(pipe, monkeypatch):
    monkeypatch.setattr(textio, "READ_SIZE", 3)  # every line arrives in pieces
    stream, w, close = pipe
    os.write(w, "one\r\ntwo three\n\nünï\r\nlast\r".encode())
    close()
    chunks = list(read_input_lines(stream, None, 100))
    assert [line for c in chunks for line in c] == ["one", "two three", "", "ünï", "last"]


def test_a_pause_yields_the_lines_so_far_while_the_pipe_stays_open(pipe):
    stream, w, close = pipe
    guard = threading.Timer(10, close)  # never hang: the end of input comes after 10 s at most
    guard.start()
    try:
        os.write(w, b"first\nsecond\npart")
        lines = read_input_lines(stream, None, 1024)
        start = time.monotonic()
        assert next(lines) == ["first", "second"]  # the partial "part" waits for its newline
        assert time.monotonic() - start < 5
        os.write(w, b"ial\nthird\n")
        assert next(lines) == ["partial", "third"]
        assert time.monotonic() - start < 5
    finally:
        guard.cancel()
    close()
    assert list(lines) == []


def test_a_fast_pipe_fills_whole_chunks(pipe):
    stream, w, close = pipe
    os.write(w, b"".join(b"%d\n" % i for i in range(5000)))  # 24 KB: fits the pipe's buffer
    close()
    chunks = list(read_input_lines(stream, None, 1024))
    assert [len(c) for c in chunks] == [1024] * 4 + [904]
    assert [int(x) for c in chunks for x in c] == list(range(5000))


def test_a_pipe_larger_than_its_buffer_keeps_order_and_count(pipe):
    stream, w, close = pipe
    n = 100_000

    def write():
        for start in range(0, n, 10_000):
            os.write(w, b"".join(b"line %d\n" % i for i in range(start, start + 10_000)))
        close()

    writer = threading.Thread(target=write, daemon=True)
    writer.start()
    chunks = list(read_input_lines(stream, None, 1024))
    writer.join(10)
    assert [line for c in chunks for line in c] == [f"line {i}" for i in range(n)]
    assert max(len(c) for c in chunks) == 1024


def test_invalid_utf8_names_its_line_across_reads(pipe, monkeypatch):
    monkeypatch.setattr(textio, "READ_SIZE", 5)
    stream, w, close = pipe
    os.write(w, b"aaaa\nbbbbbbb\r\ncc\nd\xffd\n")
    close()
    with pytest.raises(DataError, match=r"stdin: line 4, byte 2: not valid UTF-8 \(0xff\)"):
        list(read_input_lines(stream, None, 100))


def test_files_and_streams_without_a_descriptor_are_read_in_full_chunks(tmp_path):
    path = tmp_path / "in.txt"
    path.write_bytes(b"a\nb\r\nc")
    with open(path, "rb") as f:
        assert textio._stream_fd(f) is None  # stdin redirected from a file
    assert textio._stream_fd(io.BytesIO(b"a\n")) is None  # CliRunner's stdin
    assert list(read_input_lines(None, path, 2)) == [["a", "b"], ["c"]]
    assert list(read_input_lines(SimpleNamespace(buffer=io.BytesIO(b"a\nb\nc\n")), None, 2)) \
        == [["a", "b"], ["c"]]


def _read_line(fd: int, got: bytearray, deadline: float) -> bool:
    """Read from fd into got until it holds a newline; False at the deadline or end of output."""
    while b"\n" not in got:
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([fd], [], [], left)[0]:
            return False
        data = os.read(fd, 4096)
        if not data:
            return False
        got += data
    return True


def test_translate_answers_a_slow_writer_line_by_line(trained_run):
    """The first line's translation comes back while the writer still holds the pipe open."""
    proc = subprocess.Popen([sys.executable, "-m", "lstm_nlp", "translate", "-m", str(trained_run),
                             "--beam", "1"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    try:
        proc.stdin.write(b"The dog sees a cat.\n")
        proc.stdin.flush()
        got = bytearray()
        # the deadline covers the start (torch import, model load) on a busy machine; before
        # streams the answer never came while stdin stayed open
        assert _read_line(proc.stdout.fileno(), got, time.monotonic() + 90), \
            "no translation while stdin is open"
        assert got.count(b"\n") == 1 and proc.poll() is None
        rest, err = proc.communicate(b"A man rides a bike.\n", timeout=90)  # then stdin ends
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err.decode()[-2000:]
    assert len((bytes(got) + rest).decode().splitlines()) == 2
