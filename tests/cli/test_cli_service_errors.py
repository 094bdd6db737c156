"""The service's own words in error lines: a missing bucket and bad credentials, against the moto server.

moto checks credentials only when ``INITIAL_NO_AUTH_ACTION_COUNT`` is reached; its server
sets that count at ``POST /moto-api/reset-auth`` (``0``: check every request). The session's
moto server is shared by every test, so :func:`checked` turns the check on for one test and off
again (``inf``) after it, whatever the test's outcome (``MotoServer.credentials_checked``).
"""

from __future__ import annotations

import json
import re
import textwrap
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest

from cli.conftest import BUCKET, REGION, S3_KEY, S3_SECRET, Cli
from harness import MotoServer

PREFIX = "remote-store-transfer: error: "
NO_BUCKET = "(NoSuchBucket: The specified bucket does not exist)"
BAD_KEY = "(InvalidAccessKeyId: The AWS Access Key Id you provided does not exist in our records.)"
BAD_SIGNATURE = "(SignatureDoesNotMatch: "
SUMMARY = re.compile(
    r"^(?P<head>.+): 0 transferred, 0 skipped, (?P<failed>\d+) failed, 0 deleted, 0 B in [\d.]+ s$", re.MULTILINE
)


def _toml(endpoint: str, stores: dict[str, tuple[str, str, str]]) -> str:
    """Stores named by *stores*: name -> (bucket, key, secret), each on its own backend."""
    parts = []
    for name, (bucket, key, secret) in stores.items():
        parts.append(
            textwrap.dedent(
                f"""\
                [backends.{name}]
                type = "s3"
                options = {{ bucket = "{bucket}", endpoint_url = "{endpoint}", key = "{key}", \
secret = "{secret}", region_name = "{REGION}" }}

                [stores.{name}]
                backend = "{name}"
                """
            )
        )
    return "\n".join(parts)


@pytest.fixture
def s3_cli(cli: Cli, s3_endpoint: str, tmp_path: Path) -> Cli:
    """The CLI with stores ``nob`` (no such bucket), ``badkey`` (an unknown key), ``badsecret`` (a wrong secret)."""
    iam = boto3.client(
        "iam", endpoint_url=s3_endpoint, aws_access_key_id=S3_KEY, aws_secret_access_key=S3_SECRET, region_name=REGION
    )
    user = f"u{tmp_path.name[-20:]}".replace("_", "")
    iam.create_user(UserName=user)
    key = iam.create_access_key(UserName=user)["AccessKey"]["AccessKeyId"]
    boto3.client(
        "s3", endpoint_url=s3_endpoint, aws_access_key_id=S3_KEY, aws_secret_access_key=S3_SECRET, region_name=REGION
    ).put_object(Bucket=BUCKET, Key="x/f0.txt", Body=b"f0")
    stores = {
        "nob": ("no-such-bucket-here", S3_KEY, S3_SECRET),
        "badkey": (BUCKET, "AKIAUNKNOWNKEY000000", S3_SECRET),
        "badsecret": (BUCKET, key, "not-the-secret"),
    }
    path = tmp_path / "service.toml"
    path.write_text(_toml(s3_endpoint, stores))
    cli.env["REMOTE_STORE_TRANSFER_STORES"] = str(path)
    return cli


@pytest.fixture
def checked(moto_server: MotoServer) -> Iterator[None]:
    """Credentials checked on every request of the moto server, for one test."""
    with moto_server.credentials_checked():
        yield


def test_a_missing_bucket_says_no_such_bucket(s3_cli):
    result = s3_cli("download", "nob:x/f0.txt", "out.txt")
    assert result.returncode == 3, result.stderr
    assert result.stderr.splitlines() == [f"{PREFIX}download nob:x/f0.txt: Not found: x/f0.txt {NO_BUCKET}"]

    as_json = s3_cli("download", "nob:x/f0.txt", "out.txt", "--json")
    assert json.loads(as_json.stdout)["error"] == f"Not found: x/f0.txt {NO_BUCKET}"


def test_an_unknown_key_says_so_for_a_file_and_a_tree(s3_cli, checked):
    single = s3_cli("download", "badkey:x/f0.txt", "out.txt")
    assert single.returncode == 5, single.stderr
    # a HEAD request has no body: the service's answer is its status
    assert single.stderr.strip().endswith("Permission denied: x/f0.txt (HTTP 403: Forbidden)"), single.stderr

    tree = s3_cli("download", "-r", "badkey:x", "out", "--json")
    assert tree.returncode == 5, tree.stderr
    *files, summary = (json.loads(line) for line in tree.stdout.splitlines())
    assert [f["path"] for f in files] == [""]
    assert files[0]["error"].endswith(BAD_KEY)
    assert summary["failed"] == 1
    assert tree.stderr.splitlines() == [f"{PREFIX}listing badkey:x: PermissionDenied: Permission denied: x {BAD_KEY}"]


def test_a_tree_that_failed_for_a_wrong_secret_counts_the_failure(s3_cli, checked):
    (s3_cli.cwd / "src").mkdir()
    (s3_cli.cwd / "src" / "a.txt").write_bytes(b"a" * 1000)

    result = s3_cli("upload", "-r", "src", "badsecret:y")
    assert result.returncode == 5, result.stderr
    found = SUMMARY.search(result.stdout)
    assert found is not None, result.stdout  # 0 B and no rate: nothing was written
    assert found["failed"] == "1"  # the run failed: not "0 failed"
    assert BAD_SIGNATURE in result.stderr

    as_json = s3_cli("upload", "-r", "src", "badsecret:y", "--json")
    summary = json.loads(as_json.stdout.splitlines()[-1])
    assert (summary["failed"], summary["transferred"], summary["bytes"], summary["ok"]) == (1, 0, 0, False)
    assert BAD_SIGNATURE in summary["error"]


def test_the_shared_server_checks_nothing_again_once_a_checked_test_failed(moto_server, s3_endpoint):
    """The session's server serves every later test: a failing checked test must not leave it checking."""
    stranger = boto3.client(
        "s3",
        endpoint_url=s3_endpoint,
        aws_access_key_id="AKIAUNKNOWNKEY000000",
        aws_secret_access_key="x",
        region_name=REGION,
    )

    def failing_checked_test() -> None:
        with moto_server.credentials_checked():
            with pytest.raises(stranger.exceptions.ClientError, match="InvalidAccessKeyId"):
                stranger.list_objects_v2(Bucket=BUCKET)
            raise AssertionError("the test failed")

    with pytest.raises(AssertionError, match="the test failed"):
        failing_checked_test()
    assert stranger.list_objects_v2(Bucket=BUCKET)["ResponseMetadata"]["HTTPStatusCode"] == 200
