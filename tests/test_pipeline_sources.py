"""The same blocks through each source give the same tables: files, lake (moto S3) and neardata."""

from __future__ import annotations

from pathlib import Path

import pytest

from clitools import BUSY_CONTRACTS, cli, cli_env, dump_tables
from lakebuild import fixture_lake
from s3server import CREDENTIALS, block_files, create_bucket, moto_thread, s3_client, upload_block

pytestmark = pytest.mark.timeout(300)


def _contracts() -> list[str]:
    return [arg for c in BUSY_CONTRACTS for arg in ("--contract", c)]


def test_lake_source_through_the_cli_matches_the_files_source(tmp_path: Path) -> None:
    lake = tmp_path / "lake"
    heights = fixture_lake(lake, copies=2, skip_every=3)
    rng = ["--from", str(heights[0]), "--to", str(heights[-1])]
    cli("backfill", "--source", f"files:{lake}", *rng, "--store", f"chdb://{tmp_path / 'files'}", *_contracts())
    expected = dump_tables(tmp_path / "files")
    with moto_thread() as endpoint:
        client = s3_client(endpoint)
        create_bucket(client, "mirror")
        for h in heights:
            upload_block(client, "mirror", h, block_files(lake / f"{h:012d}"))
        env = cli_env(AWS_ACCESS_KEY_ID=CREDENTIALS["aws_access_key_id"],
                      AWS_SECRET_ACCESS_KEY=CREDENTIALS["aws_secret_access_key"])
        # auto picks lake because AWS credentials are configured
        cli("backfill", "--source", "auto", "--lake-endpoint", endpoint, "--lake-bucket", "mirror", *rng,
            "--store", f"chdb://{tmp_path / 'lake-store'}", *_contracts(), env=env)
    assert dump_tables(tmp_path / "lake-store") == expected
    assert any(r[10] == "execute_intents" for r in expected["receipts"])
