"""What usage tracking costs on the download hot path: requests/s of a small download, with and without
the usage UPSERT, measured in one run against the same server.

Starts two Spyglass servers, each in its own process under uvicorn with a fresh data directory
(SQLite, or a fresh PostgreSQL database per server with --postgres URL): one as shipped, one whose
spyglass.usage.record_download is a no-op. Uploads a small image to each, then has a few client
threads download it over keep-alive connections, alternating between the two servers round by
round, and prints the best round of each and the ratio. Numbers only; nothing is asserted.

    .venv/bin/python bench/download_usage.py [--size 4096] [--seconds 5] [--rounds 3] [--threads 4]
        [--postgres postgresql+psycopg://postgres@127.0.0.1:5432/postgres]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import create_engine, make_url

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.e2e.conftest import free_port  # noqa: E402

PASSWORD = "bench-admin-password"


def serve(port: int, data_dir: str, database_url: str, record_usage: bool) -> None:
    """The server process (run as `download_usage.py --serve ...`)."""
    import uvicorn

    from spyglass.api.app import create_app
    from spyglass.cli import prepare
    from spyglass.settings import Settings
    from spyglass.sharing import usage

    async def not_recorded(*_args: Any) -> None:
        return None

    if not record_usage:
        usage.record_download = not_recorded  # type: ignore[assignment]
    settings = Settings(
        data_dir=Path(data_dir), port=port, admin_password=PASSWORD, database_url=database_url
    ).validate()
    prepare(settings)
    uvicorn.run(
        create_app(settings),
        port=port,
        log_level="warning",
        loop="uvloop",
        http="httptools",
        access_log=False,
    )


def start(record_usage: bool, database_url: str) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    flags = ["--serve", str(port), tempfile.mkdtemp(prefix="spyglass-bench-"), database_url]
    process = subprocess.Popen([sys.executable, __file__, *flags, "usage" if record_usage else "no-usage"])
    base = f"http://127.0.0.1:{port}"
    while True:
        try:
            httpx.get(base + "/", timeout=1)
            return process, base
        except httpx.TransportError:
            time.sleep(0.1)


def _database(postgres: str, name: str, statement: str) -> str:
    admin = create_engine(postgres, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'{statement} "{name}"')
    admin.dispose()
    return make_url(postgres).set(database=name).render_as_string(hide_password=False)


def token(base: str) -> str:
    auth = {
        "auth": {
            "identity": {
                "methods": ["password"],
                "password": {"user": {"name": "admin", "domain": {"id": "default"}, "password": PASSWORD}},
            },
            "scope": {"project": {"name": "admin", "domain": {"id": "default"}}},
        }
    }
    response = httpx.post(f"{base}/identity/v3/auth/tokens", json=auth)
    response.raise_for_status()
    return response.headers["X-Subject-Token"]


def small_image(base: str, headers: dict[str, str], size: int) -> str:
    body = {"name": "bench", "disk_format": "raw", "container_format": "bare"}
    image_id: str = httpx.post(f"{base}/v2/images", json=body, headers=headers).json()["id"]
    octet = {**headers, "Content-Type": "application/octet-stream"}
    httpx.put(f"{base}/v2/images/{image_id}/file", content=b"s" * size, headers=octet).raise_for_status()
    return image_id


def hammer(url: str, headers: dict[str, str], seconds: float, threads: int) -> float:
    """Downloads per second over `seconds`, from `threads` keep-alive clients."""
    counts = [0] * threads
    stop = time.perf_counter() + seconds

    def client(i: int) -> None:
        with httpx.Client(headers=headers) as http:
            while time.perf_counter() < stop:
                http.get(url).raise_for_status()
                counts[i] += 1

    workers = [threading.Thread(target=client, args=(i,)) for i in range(threads)]
    began = time.perf_counter()
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return sum(counts) / (time.perf_counter() - began)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=4096)
    parser.add_argument("--seconds", type=float, default=5)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--postgres", default="", help="server URL; each server gets a fresh database")
    args = parser.parse_args()
    targets: dict[str, tuple[str, dict[str, str]]] = {}
    processes = []
    databases = [f"spyglass_bench_usage_{uuid.uuid4().hex[:8]}" for _ in range(2)] if args.postgres else []
    try:
        for n, (variant, record_usage) in enumerate((("with usage", True), ("without usage", False))):
            url = _database(args.postgres, databases[n], "CREATE DATABASE") if databases else ""
            process, base = start(record_usage, url)
            processes.append(process)
            headers = {"X-Auth-Token": token(base)}
            targets[variant] = (f"{base}/v2/images/{small_image(base, headers, args.size)}/file", headers)
        rates: dict[str, list[float]] = {variant: [] for variant in targets}
        for _ in range(args.rounds):
            for variant, (url, headers) in targets.items():
                rates[variant].append(hammer(url, headers, args.seconds, args.threads))
    finally:
        for process in processes:
            process.terminate()
            process.wait()
        for name in databases:
            _database(args.postgres, name, "DROP DATABASE IF EXISTS")
    for variant, found in rates.items():
        print(
            f"{variant:>14}: best {max(found):7.0f} req/s  (rounds: {', '.join(f'{r:.0f}' for r in found)})"
        )
    ratio = max(rates["with usage"]) / max(rates["without usage"])
    database = "PostgreSQL" if args.postgres else "SQLite"
    print(f"{args.size}-byte download on {database}, {args.threads} clients: with/without = {ratio:.2f}")


if __name__ == "__main__":
    if len(sys.argv) == 6 and sys.argv[1] == "--serve":
        serve(int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5] == "usage")
    else:
        main()
