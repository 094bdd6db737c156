"""One test (or more) per requirement of the transfer spec, XFER-001..017."""

from __future__ import annotations

import ast
import inspect
import io
from pathlib import Path

import pytest
from remote_store import AlreadyExists, Capability, CapabilityNotSupported, NotFound, Store
from remote_store.backends import MemoryBackend

import remote_store_transfer
from remote_store_transfer import download, transfer, upload

from support import RecordingBackend, RecordingStream

MiB = 1_048_576
SRC = Path(remote_store_transfer.__file__).parent


def _params(func: object) -> list[tuple[str, inspect._ParameterKind, object]]:
    sig = inspect.signature(func)  # type: ignore[arg-type]
    return [(p.name, p.kind, p.default) for p in sig.parameters.values()]


P, K = inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY
E = inspect.Parameter.empty


def _check_signature(func: object, positional: list[str]) -> None:
    params = _params(func)
    assert params[: len(positional)] == [(n, P, E) for n in positional]
    keyword = {n: (k, d) for n, k, d in params[len(positional) :]}
    assert keyword["overwrite"] == (K, False)
    assert keyword["on_progress"] == (K, None)
    # Anything beyond the spec is keyword-only with a default, so spec calls are unchanged.
    assert all(k == K and d is not E for k, d in keyword.values())
    assert inspect.signature(func).return_annotation in (None, "None")  # type: ignore[arg-type]


# -- upload -------------------------------------------------------------------------------------------------


@pytest.mark.spec("XFER-001")
def test_upload_signature_and_none_return(make_file, memory_store):
    _check_signature(upload, ["store", "local_path", "remote_path"])
    _check_signature(remote_store_transfer.TransferManager().upload, ["store", "local_path", "remote_path"])
    src = make_file("a.bin", 10)
    assert upload(memory_store, src, "a.bin") is None  # PathLike accepted
    assert upload(memory_store, str(src), "b.bin") is None  # str accepted
    with pytest.raises(TypeError):
        upload(memory_store, src, "c.bin", False)  # type: ignore[misc]  # overwrite is keyword-only


@pytest.mark.spec("XFER-002")
def test_upload_hands_the_open_file_to_store_write(make_file):
    backend = RecordingBackend()
    src = make_file("a.bin", 300_000)
    upload(Store(backend=backend), src, "a.bin")
    (content,) = backend.written
    assert isinstance(content, io.BufferedReader)
    assert content.name == str(src)
    assert content.closed  # and it was closed afterwards
    assert backend.read_bytes("a.bin") == src.read_bytes()


@pytest.mark.spec("XFER-002")
def test_upload_wraps_the_file_only_to_observe_chunks(make_file):
    backend = RecordingBackend()
    src = make_file("a.bin", 300_000)
    upload(Store(backend=backend), src, "a.bin", on_progress=lambda n: None)
    (content,) = backend.written
    assert not isinstance(content, bytes | bytearray)  # still a stream, never the whole file
    assert content.name == str(src)  # delegates to the open file
    assert backend.read_bytes("a.bin") == src.read_bytes()


@pytest.mark.spec("XFER-003")
def test_upload_overwrite_is_forwarded(make_file, memory_store):
    memory_store.write("a.bin", b"old")
    src = make_file("a.bin", b"new")
    with pytest.raises(AlreadyExists):
        upload(memory_store, src, "a.bin")
    assert memory_store.read_bytes("a.bin") == b"old"
    upload(memory_store, src, "a.bin", overwrite=True)
    assert memory_store.read_bytes("a.bin") == b"new"


@pytest.mark.spec("XFER-004")
def test_upload_missing_local_file_raises_before_any_store_call(tmp_path):
    backend = RecordingBackend()
    seen: list[str] = []

    class Plugin:
        @remote_store_transfer.hookimpl
        def pre_transfer(self, context):
            seen.append("pre")

    manager = remote_store_transfer.TransferManager([Plugin()])
    for call in (upload, manager.upload):
        with pytest.raises(FileNotFoundError):
            call(Store(backend=backend), tmp_path / "missing.bin", "a.bin")
    assert backend.calls == []
    assert seen == []  # no transfer began: no hook fired


@pytest.mark.spec("XFER-005")
def test_upload_progress_fires_per_read_not_cumulative(make_file):
    backend = RecordingBackend()
    src = make_file("a.bin", 200_000)  # MemoryBackend reads 64 KiB at a time
    got: list[int] = []
    upload(Store(backend=backend), src, "a.bin", on_progress=got.append)
    assert got == [65536, 65536, 65536, 200_000 - 3 * 65536]
    assert 0 not in got


@pytest.mark.spec("XFER-005")
def test_upload_without_progress_does_not_wrap(make_file):
    backend = RecordingBackend()
    upload(Store(backend=backend), make_file("a.bin", 5), "a.bin", on_progress=None)
    assert type(backend.written[0]) is io.BufferedReader


# -- download -----------------------------------------------------------------------------------------------


@pytest.mark.spec("XFER-006")
def test_download_signature_and_none_return(tmp_path, memory_store):
    _check_signature(download, ["store", "remote_path", "local_path"])
    _check_signature(remote_store_transfer.TransferManager().download, ["store", "remote_path", "local_path"])
    memory_store.write("a.bin", b"x")
    assert download(memory_store, "a.bin", tmp_path / "a") is None
    assert download(memory_store, "a.bin", str(tmp_path / "b")) is None
    assert (tmp_path / "a").read_bytes() == b"x"


@pytest.mark.spec("XFER-007")
def test_download_reads_1_mib_chunks_and_writes_each(tmp_path):
    backend = RecordingBackend()
    data = bytes(range(256)) * (3 * MiB // 256 + 7)
    backend.write("big.bin", data)
    download(Store(backend=backend), "big.bin", tmp_path / "big.bin")
    (stream,) = backend.streams
    assert stream.requests and set(stream.requests) == {MiB}
    assert len(stream.requests) == 5  # 3 full chunks, 1 partial, 1 empty read at EOF
    assert (tmp_path / "big.bin").read_bytes() == data
    assert stream.closed_by_caller


@pytest.mark.spec("XFER-007")
def test_download_falls_back_to_read_for_plain_streams(tmp_path):
    class PlainStream:
        """A stream with only read() and close(), like some network bodies."""

        def __init__(self, data: bytes) -> None:
            self._inner = io.BytesIO(data)
            self.requests: list[int] = []
            self.closed = False

        def read(self, size: int = -1) -> bytes:
            self.requests.append(size)
            return self._inner.read(size)

        def close(self) -> None:
            self.closed = True

    streams: list[PlainStream] = []

    class PlainBackend(MemoryBackend):
        def read(self, path: str):  # type: ignore[override]
            streams.append(PlainStream(super().read(path).read()))
            return streams[-1]

    store = Store(backend=PlainBackend())
    store.write("a.bin", b"z" * (MiB + 5))
    got: list[int] = []
    download(store, "a.bin", tmp_path / "a.bin", on_progress=got.append)
    assert set(streams[0].requests) == {MiB}
    assert got == [MiB, 5]
    assert streams[0].closed
    assert (tmp_path / "a.bin").read_bytes() == b"z" * (MiB + 5)


@pytest.mark.spec("XFER-008")
def test_download_refuses_existing_local_file_before_store_read(tmp_path):
    backend = RecordingBackend()
    backend.write("a.bin", b"remote")
    backend.calls.clear()
    dest = tmp_path / "a.bin"
    dest.write_bytes(b"local")
    with pytest.raises(FileExistsError, match="a.bin"):
        download(Store(backend=backend), "a.bin", dest)
    assert "read" not in backend.calls
    assert dest.read_bytes() == b"local"
    download(Store(backend=backend), "a.bin", dest, overwrite=True)
    assert dest.read_bytes() == b"remote"


@pytest.mark.spec("XFER-009")
def test_download_progress_fires_per_chunk(tmp_path, memory_store):
    memory_store.write("a.bin", b"q" * (2 * MiB + 10))
    got: list[int] = []
    download(memory_store, "a.bin", tmp_path / "a.bin", on_progress=got.append)
    assert got == [MiB, MiB, 10]


@pytest.mark.spec("XFER-010")
def test_download_closes_remote_stream_on_every_error(tmp_path):
    backend = RecordingBackend(fail_after=MiB)
    backend.write("a.bin", b"w" * (3 * MiB))
    store = Store(backend=backend)
    # 1. the remote stream fails mid-way
    with pytest.raises(ConnectionResetError):
        download(store, "a.bin", tmp_path / "one")
    # 2. the local file cannot be opened (a directory stands there)
    (tmp_path / "two").mkdir()
    with pytest.raises(IsADirectoryError):
        download(store, "a.bin", tmp_path / "two", overwrite=True)

    # 3. the progress callback raises
    def boom(n: int) -> None:
        raise RuntimeError("callback failed")

    with pytest.raises(RuntimeError, match="callback failed"):
        download(store, "a.bin", tmp_path / "three", on_progress=boom)
    assert len(backend.streams) == 3
    assert all(s.closed_by_caller for s in backend.streams)


@pytest.mark.spec("XFER-010")
def test_download_missing_remote_file_raises_not_found_and_creates_nothing(tmp_path, memory_store):
    with pytest.raises(NotFound):
        download(memory_store, "nope.bin", tmp_path / "nope.bin")
    assert not (tmp_path / "nope.bin").exists()


# -- transfer -----------------------------------------------------------------------------------------------


@pytest.mark.spec("XFER-011")
def test_transfer_signature_and_none_return(memory_store):
    _check_signature(transfer, ["src_store", "src_path", "dst_store", "dst_path"])
    _check_signature(
        remote_store_transfer.TransferManager().transfer, ["src_store", "src_path", "dst_store", "dst_path"]
    )
    memory_store.write("a.bin", b"1")
    assert transfer(memory_store, "a.bin", memory_store, "b.bin") is None  # same store allowed
    assert memory_store.read_bytes("b.bin") == b"1"


@pytest.mark.spec("XFER-012")
def test_transfer_passes_the_source_stream_to_destination_write():
    src, dst = RecordingBackend(), RecordingBackend()
    src.write("a.bin", b"s" * 100_000)
    transfer(Store(backend=src), "a.bin", Store(backend=dst), "b.bin")
    assert dst.written == [src.streams[0]]  # the very stream store.read() returned: no buffering
    assert dst.read_bytes("b.bin") == b"s" * 100_000


@pytest.mark.spec("XFER-013")
def test_transfer_overwrite_is_forwarded(memory_store):
    memory_store.write("a.bin", b"new")
    memory_store.write("b.bin", b"old")
    with pytest.raises(AlreadyExists):
        transfer(memory_store, "a.bin", memory_store, "b.bin")
    assert memory_store.read_bytes("b.bin") == b"old"
    transfer(memory_store, "a.bin", memory_store, "b.bin", overwrite=True)
    assert memory_store.read_bytes("b.bin") == b"new"


@pytest.mark.spec("XFER-014")
def test_transfer_progress_fires_per_source_read():
    src, dst = RecordingBackend(), RecordingBackend()
    src.write("a.bin", b"t" * 150_000)
    got: list[int] = []
    transfer(Store(backend=src), "a.bin", Store(backend=dst), "b.bin", on_progress=got.append)
    assert got == [65536, 65536, 150_000 - 2 * 65536]  # the destination reads 64 KiB at a time
    assert [r for r in src.streams[0].requests] == [65536] * 4
    assert dst.read_bytes("b.bin") == b"t" * 150_000


@pytest.mark.spec("XFER-015")
def test_transfer_closes_source_stream_on_error():
    src = RecordingBackend(fail_after=65536)
    src.write("a.bin", b"u" * 200_000)
    src.write("small.bin", b"v" * 10)
    store = Store(backend=src)
    with pytest.raises(ConnectionResetError):
        transfer(store, "a.bin", Store(backend=MemoryBackend()), "b.bin")
    with pytest.raises(AlreadyExists):
        transfer(store, "small.bin", store, "a.bin")
    assert len(src.streams) == 2
    assert all(s.closed_by_caller for s in src.streams)


# -- coupling and capabilities ------------------------------------------------------------------------------


@pytest.mark.spec("XFER-016")
def test_works_through_store_child(make_file, tmp_path):
    root = Store(backend=MemoryBackend())
    reports = root.child("reports")
    upload(reports, make_file("q1.csv", b"a,b\n"), "q1.csv")
    assert root.read_bytes("reports/q1.csv") == b"a,b\n"
    transfer(reports, "q1.csv", root.child("archive/2024"), "q1.csv")
    assert root.read_bytes("archive/2024/q1.csv") == b"a,b\n"
    download(root.child("archive"), "2024/q1.csv", tmp_path / "back.csv")
    assert (tmp_path / "back.csv").read_bytes() == b"a,b\n"


@pytest.mark.spec("XFER-016")
def test_source_never_touches_backend_internals():
    offenders = []
    for path in SRC.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Attribute) and node.attr in {"_backend", "unwrap"}:
                offenders.append(f"{path.name}:{node.lineno} .{node.attr}")
    assert offenders == []


@pytest.mark.spec("XFER-017")
@pytest.mark.parametrize("missing", [Capability.READ, Capability.WRITE])
def test_capability_errors_propagate_unwrapped(make_file, tmp_path, missing):
    backend = RecordingBackend(without={missing})
    store = Store(backend=backend)
    full = Store(backend=MemoryBackend())
    full.write("a.bin", b"data")
    src = make_file("a.bin", b"data")
    calls = {
        Capability.WRITE: [
            lambda: upload(store, src, "a.bin"),
            lambda: transfer(full, "a.bin", store, "b.bin"),
        ],
        Capability.READ: [
            lambda: download(store, "a.bin", tmp_path / "x.bin"),
            lambda: transfer(store, "a.bin", full, "c.bin"),
        ],
    }[missing]
    for call in calls:
        with pytest.raises(CapabilityNotSupported) as info:
            call()
        assert type(info.value) is CapabilityNotSupported
        assert info.value.capability == missing.value
        assert info.value.__cause__ is None


@pytest.mark.spec("XFER-017")
def test_atomic_on_store_without_atomic_write_raises_capability_error(make_file):
    backend = RecordingBackend(without={Capability.ATOMIC_WRITE})
    with pytest.raises(CapabilityNotSupported):
        upload(Store(backend=backend), make_file("a.bin", b"x"), "a.bin", atomic=True)
    assert not backend.exists("a.bin")  # never a silent non-atomic write


def test_recording_stream_double_checks_itself():
    """The doubles above must record what they claim to (guards the tests that rely on them)."""
    stream = RecordingStream(b"abc")
    buf = bytearray(2)
    assert stream.readinto(buf) == 2
    assert stream.read(5) == b"c"
    assert stream.requests == [2, 5]
