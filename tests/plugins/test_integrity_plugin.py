"""The integrity plugin through the public functions: digest while streaming, verification after the write."""

from __future__ import annotations

import hashlib

import pytest
from remote_store import Capability, ContentDigest, Store, WriteResult
from remote_store.backends import MemoryBackend

import remote_store_transfer as rst
from remote_store_transfer import IntegrityError, capture, enable_plugin
from remote_store_transfer.plugin.integrity import Digest, IntegrityPlugin, digest_of

from support import RecordingBackend

SIZE = 3 * 1_048_576 + 123  # several chunks, last one partial


def sha(data: bytes, algorithm: str = "sha256") -> str:
    return hashlib.new(algorithm, data).hexdigest()


@pytest.mark.parametrize("store_fixture", ["memory_store", "local_store"])
def test_digest_of_every_operation_reaches_the_caller(request, manager, make_file, tmp_path, store_fixture):
    store: Store = request.getfixturevalue(store_fixture)
    enable_plugin("integrity", manager=manager)
    source = make_file("src.bin", SIZE)
    expected = sha(source.read_bytes())
    with capture() as transfers:
        manager.upload(store, source, "a/src.bin")
        manager.download(store, "a/src.bin", tmp_path / "back.bin")
        manager.transfer(store, "a/src.bin", store, "b/copy.bin")
    assert [t.operation for t in transfers] == ["upload", "download", "transfer"]
    assert [digest_of(t) for t in transfers] == [Digest("sha256", expected)] * 3


def test_process_wide_functions_and_other_algorithms(memory_store, make_file):
    enable_plugin("integrity", algorithm="BLAKE2b")
    source = make_file("src.bin", 100_000)
    with capture() as transfers:
        rst.upload(memory_store, source, "x")
    assert digest_of(transfers[0]) == Digest("blake2b", sha(source.read_bytes(), "blake2b"))


def test_verify_passes_on_a_faithful_store(manager, memory_store, local_store, make_file, tmp_path):
    enable_plugin("integrity", manager=manager, verify=True)
    source = make_file("src.bin", SIZE)
    with capture() as transfers:
        manager.upload(local_store, source, "src.bin")
        manager.transfer(local_store, "src.bin", memory_store, "copy.bin")
        manager.download(memory_store, "copy.bin", tmp_path / "back.bin")
    assert all(digest_of(t).verified is True for t in transfers)  # type: ignore[union-attr]


@pytest.mark.parametrize("operation", ["upload", "transfer"])
def test_verify_catches_a_destination_that_corrupts_bytes(
    manager, memory_store, corrupting_store, make_file, operation
):
    enable_plugin("integrity", manager=manager, verify=True)
    source = make_file("src.bin", 200_000)
    expected = sha(source.read_bytes())
    memory_store.write("src.bin", source.read_bytes())
    call = {
        "upload": lambda: manager.upload(corrupting_store, source, "dst.bin"),
        "transfer": lambda: manager.transfer(memory_store, "src.bin", corrupting_store, "dst.bin"),
    }[operation]
    with capture() as transfers, pytest.raises(IntegrityError) as caught:
        call()
    error = caught.value
    actual = sha(corrupting_store.read_bytes("dst.bin"))
    assert (error.algorithm, error.expected, error.actual) == ("sha256", expected, actual)
    assert expected in str(error) and actual in str(error)
    assert error.destination == f"{corrupting_store!r}:dst.bin" and error.destination in str(error)
    assert error.source in str(error)
    assert digest_of(transfers[0]) == Digest("sha256", expected, verified=False)


def test_without_verify_the_corruption_goes_unnoticed_but_the_digest_is_the_sent_one(
    manager, corrupting_store, make_file
):
    enable_plugin("integrity", manager=manager)
    source = make_file("src.bin", 1000)
    with capture() as transfers:
        manager.upload(corrupting_store, source, "dst.bin")
    assert digest_of(transfers[0]) == Digest("sha256", sha(source.read_bytes()))


def test_verify_catches_a_local_file_changed_after_the_download(manager, memory_store, tmp_path):
    memory_store.write("src.bin", b"x" * 10_000)
    dest = tmp_path / "out.bin"

    class Tamperer:  # runs between the write and the integrity check: tryfirst, registered after integrity
        @rst.hookimpl(tryfirst=True)
        def post_transfer(self, context, error):
            dest.write_bytes(b"y" * 10_000)

    enable_plugin("integrity", manager=manager, verify=True)
    manager.register(Tamperer(), name="tamperer")
    with pytest.raises(IntegrityError) as caught:
        manager.download(memory_store, "src.bin", dest)
    assert caught.value.destination == f"local:{dest}"
    assert caught.value.actual == sha(b"y" * 10_000)


class DigestReportingBackend(MemoryBackend):
    """A MemoryBackend whose write result carries a content digest (as some cloud backends' do)."""

    def __init__(self, report: str | None = None) -> None:
        super().__init__()
        self.report = report
        self.reads = 0

    def write(self, path, content, *, overwrite=False, metadata=None) -> WriteResult:
        data = content if isinstance(content, bytes) else content.read()
        result = super().write(path, data, overwrite=overwrite, metadata=metadata)
        digest = ContentDigest("sha256", self.report or sha(data))
        return WriteResult(path=result.path, size=result.size, source="native", digest=digest)

    def read(self, path):
        self.reads += 1
        return super().read(path)


def test_verify_uses_the_digest_the_store_reports(manager, make_file):
    backend = DigestReportingBackend()
    store = Store(backend=backend)
    enable_plugin("integrity", manager=manager, verify=True)
    manager.upload(store, make_file("a.bin", 5000), "a.bin")
    assert backend.reads == 0  # no read-back: the backend's digest was compared

    backend.report = "00" * 32  # the store says it holds something else
    with pytest.raises(IntegrityError, match="0000"):
        manager.upload(store, make_file("b.bin", 5000), "b.bin")


def test_verify_reads_back_when_told_not_to_trust_the_backend(manager, make_file):
    backend = DigestReportingBackend()
    enable_plugin("integrity", manager=manager, verify=True, trust_backend_digest=False)
    manager.upload(Store(backend=backend), make_file("a.bin", 5000), "a.bin")
    assert backend.reads == 1


def test_verify_reads_back_from_a_store_without_metadata(manager, make_file):
    backend = RecordingBackend(without={Capability.METADATA})
    store = Store(backend=backend)
    enable_plugin("integrity", manager=manager, verify=True)
    source = make_file("a.bin", 5000)
    with capture() as transfers:
        manager.upload(store, source, "a.bin")
    assert digest_of(transfers[0]) == Digest("sha256", sha(source.read_bytes()), verified=True)
    assert "get_file_info" not in backend.calls  # the capability is checked, not tripped over
    assert backend.calls.count("read") == 1  # verified by reading the file back


def test_no_digest_for_a_failed_transfer(manager, memory_store, tmp_path):
    enable_plugin("integrity", manager=manager)
    with capture() as transfers, pytest.raises(Exception, match="missing"):
        manager.download(memory_store, "missing", tmp_path / "x")
    assert digest_of(transfers[0]) is None


@pytest.mark.parametrize("algorithm", ["nope", "shake_128"])
def test_bad_algorithm_is_a_config_error(algorithm):
    with pytest.raises(rst.ConfigError, match=r"plugins\.integrity"):
        enable_plugin("integrity", algorithm=algorithm)
    with pytest.raises(ValueError, match=algorithm):
        IntegrityPlugin(algorithm=algorithm)
