"""A real S3 endpoint on loopback (moto's server mode) and helpers to fill it in NEAR Lake layout.

Used by tests/test_sources_lake.py and benchmarks/s3_source.py. Only 127.0.0.1 is ever bound.
"""

from __future__ import annotations

import logging
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config

# Real mainnet blocks in Lake layout, kept in the repository (tests/fixtures/README.md).
FIXTURES = Path(__file__).resolve().parent / "fixtures" / "lake-mainnet"
REGION = "eu-central-1"
# moto accepts any credentials; botocore only needs some to sign with.
CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}


def fixture_blocks() -> list[tuple[int, Path]]:
    """(height, folder) of the real mainnet blocks in Lake layout, ascending."""
    return sorted((int(p.name), p) for p in FIXTURES.iterdir() if p.is_dir() and p.name.isdigit())


def block_files(folder: Path) -> dict[str, bytes]:
    """File name -> bytes of one Lake block folder (read, never modified)."""
    return {f.name: f.read_bytes() for f in sorted(folder.iterdir()) if f.suffix == ".json"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def closed_port() -> int:
    """A loopback port nobody listens on (bound then released), for unreachable-host tests."""
    return free_port()


def s3_client(endpoint: str, *, pool: int = 10) -> Any:
    """A plain synchronous boto3 client for filling buckets."""
    return boto3.client(
        "s3", endpoint_url=endpoint, region_name=REGION, config=Config(max_pool_connections=pool), **CREDENTIALS
    )


def create_bucket(client: Any, bucket: str) -> None:
    client.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": REGION})


def upload_block(
    client: Any, bucket: str, height: int, files: dict[str, bytes], *, skip: Iterable[str] = ()
) -> None:
    """Put one block folder under ``height``: block.json first, like the Lake uploader."""
    skipped = set(skip)
    for name in sorted(files, key=lambda n: n != "block.json"):
        if name not in skipped:
            client.put_object(Bucket=bucket, Key=f"{height:012d}/{name}", Body=files[name])


@contextmanager
def moto_thread() -> Iterator[str]:
    """moto in a thread of this process (fine for tests); yields the endpoint URL."""
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one access-log line per request otherwise
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


@contextmanager
def moto_process() -> Iterator[tuple[str, int]]:
    """moto in its own process, so that a benchmark does not share the GIL with the server.

    Yields the endpoint URL and the server's pid (to read its CPU time).
    """
    port = free_port()
    code = (
        "import logging; from moto.server import ThreadedMotoServer;"
        "logging.getLogger('werkzeug').setLevel(logging.ERROR);"
        f"s = ThreadedMotoServer(ip_address='127.0.0.1', port={port}, verbose=False); s.start();"
        "import threading; threading.Event().wait()"
    )
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    endpoint = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(endpoint + "/moto-api/", timeout=1).close()
                break
            except (urllib.error.URLError, ConnectionError):
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("moto server did not start; is moto[server] installed?") from None
                time.sleep(0.1)
        yield endpoint, proc.pid
    finally:
        proc.terminate()
        proc.wait(timeout=10)
