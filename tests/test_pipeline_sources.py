"""The same blocks through each source give the same tables: files, lake (moto S3) and neardata."""

from __future__ import annotations

import json
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


async def test_neardata_source_through_the_cli_matches_the_files_source(tmp_path: Path) -> None:
    """A local server speaking neardata's API (`null` for skipped heights, the final-block redirect)."""
    import asyncio
    import sys

    from aiohttp import web

    lake = tmp_path / "lake"
    heights = fixture_lake(lake, copies=2, skip_every=3)
    rng = ["--from", str(heights[0]), "--to", str(heights[-1])]

    async def block(request: web.Request) -> web.Response:
        folder = lake / f"{int(request.match_info['height']):012d}"
        if not folder.is_dir():
            return web.Response(body=b"null", content_type="application/json")
        files = block_files(folder)
        shards = [files[f"shard_{c['shard_id']}.json"] for c in json.loads(files["block.json"])["chunks"]]
        body = b'{"block":' + files["block.json"] + b',"shards":[' + b",".join(shards) + b"]}"
        return web.Response(body=body, content_type="application/json")

    async def last_final(request: web.Request) -> web.Response:
        raise web.HTTPFound(f"/v0/block/{heights[-1]}")

    app = web.Application()
    app.router.add_get("/v0/block/{height:\\d+}", block)
    app.router.add_get("/v0/last_block/final", last_final)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    host, port = runner.addresses[0][:2]
    try:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "indexer", "backfill", "--source", "neardata", "--neardata-url",
            f"http://{host}:{port}", *rng, "--store", f"chdb://{tmp_path / 'neardata-store'}", *_contracts(),
            env=cli_env(), stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        _, err = await asyncio.wait_for(proc.communicate(), timeout=120)
        assert proc.returncode == 0, err.decode()[-2000:]
    finally:
        await runner.cleanup()
    cli("backfill", "--source", f"files:{lake}", *rng, "--store", f"chdb://{tmp_path / 'files'}", *_contracts())
    assert dump_tables(tmp_path / "neardata-store") == dump_tables(tmp_path / "files")
