"""Upload and download throughput of a real `spyglass serve`, next to baselines from the same run.

Generates a file (default 2 GiB), starts a server on a free port with a fresh data directory,
then prints MB/s for the baselines: md5+sha512 in two threads (hashlib, the upload's ceiling in
CPU), a durable write of the file (O_DIRECT, then fdatasync: the disk's ceiling for an upload that
is on disk before the image turns active), and plain reads of it from the page cache and from
the disk. Then, against the server: upload with curl, the same upload to a second server with disk
format inspection turned off (the two alternate, best of two each), download with curl (the first
read comes from the disk, since uploads bypass the page cache; then again, cached), a ranged
download of the second half, a glance-direct import (stage with curl, then the import), 4
parallel curl uploads and downloads, and upload and download with openstacksdk. It also prints how
much the server's resident memory grew while it received the curl upload (the peak, from /proc;
the limit is 64 MiB), and the ratios the targets are stated in. Numbers only; nothing is asserted.

With `--old REV`, only downloads, compared with the code of git revision REV in the same run: a
server of each (REV's from `git archive`, on the same virtual environment), the file uploaded to
both, then `--rounds` rounds alternating which goes first, each a cached download of the whole
image, one of its second half (Range) and one of the whole image dropped from the page cache
first (from the disk), taken with curl and with a client that splices the socket into /dev/null
(no copy on the receiving side, so it leaves the server more of the two cores than curl, which
copies every byte into its own memory). It prints the best and the median of each side and their
ratios (this code / REV; `--new REV2` puts REV2 in place of this code), and the server's CPU time
per GB sent, less noisy than the rates on a shared machine. `--notifications URL` turns image.send
on in both servers (SPYGLASS_NOTIFICATIONS_TRANSPORT_URL), which counts the bytes each sent.

    .venv/bin/python bench/data_path.py [--size-mib 2048] [--dir /tmp]
    .venv/bin/python bench/data_path.py --old 57dec9a [--new a5f7bfe] [--size-mib 1024] [--rounds 5]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import mmap
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.e2e.conftest import Server, start_server, stop_server  # noqa: E402

CHUNK = 8 * 1024 * 1024


def generate(path: Path, size_mib: int) -> None:
    block = os.urandom(CHUNK)
    with path.open("wb") as handle:
        for i in range(size_mib * 1024 * 1024 // CHUNK):
            # Vary each block a little so nothing downstream can deduplicate it.
            handle.write(i.to_bytes(8, "little") + block[8:])


def timed(action: Callable[[], object]) -> float:
    began = time.perf_counter()
    action()
    return time.perf_counter() - began


def hash_two_threads(path: Path) -> None:
    md5, sha = hashlib.md5(usedforsecurity=False), hashlib.sha512()
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK):
            a = threading.Thread(target=md5.update, args=(chunk,))
            a.start()
            sha.update(chunk)
            a.join()


def durable_write(source: Path, target: Path) -> None:
    """The file written to disk past the page cache in 4 MiB blocks, then synced: what the disk
    itself allows an upload that is durable before it is declared active."""
    block = mmap.mmap(-1, CHUNK)
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_DIRECT, 0o644)
    try:
        with source.open("rb") as handle:
            while length := handle.readinto(block):  # type: ignore[attr-defined]
                os.write(fd, memoryview(block)[:length])
        os.fdatasync(fd)
    finally:
        os.close(fd)
        target.unlink()


def read_file(path: Path) -> None:
    with path.open("rb") as handle:
        while handle.readinto(bytearray(CHUNK)):
            pass


def evict(path: Path) -> None:
    """Drop the file's pages from the page cache (they are clean: nothing is lost)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


def read_cold(path: Path) -> None:
    evict(path)
    read_file(path)


def token_for(server_url: str, clouds: dict[str, object], cloud: str) -> str:
    auth = clouds["clouds"][cloud]["auth"]  # type: ignore[index]
    body = {
        "auth": {
            "identity": {
                "methods": ["password"],
                "password": {
                    "user": {
                        "name": auth["username"],
                        "domain": {"name": auth["user_domain_name"]},
                        "password": auth["password"],
                    }
                },
            },
            "scope": {
                "project": {"name": auth["project_name"], "domain": {"name": auth["project_domain_name"]}}
            },
        }
    }
    response = httpx.post(f"{server_url}/identity/v3/auth/tokens", json=body)
    response.raise_for_status()
    return response.headers["X-Subject-Token"]


def new_image(url: str, token: str, name: str) -> str:
    body = {"name": name, "disk_format": "raw", "container_format": "bare"}
    response = httpx.post(f"{url}/v2/images", json=body, headers={"X-Auth-Token": token})
    response.raise_for_status()
    image_id: str = response.json()["id"]
    return image_id


def curl(*args: str) -> None:
    subprocess.run(["curl", "-sS", "-f", "-o", "/dev/null", *args], check=True)


def peak_rss_growth(pid: int, action: Callable[[], object]) -> float:
    """MiB the process's peak resident memory grew above its size before `action`."""
    Path(f"/proc/{pid}/clear_refs").write_text("5")  # reset the peak (VmHWM) to the current RSS
    before = _status_kib(pid, "VmRSS")
    action()
    return (_status_kib(pid, "VmHWM") - before) / 1024


def _status_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


class Bench:
    def __init__(self, source: Path) -> None:
        self.source = source
        self.megabytes = source.stat().st_size / 1e6
        self.rows: dict[str, float] = {}

    def record(self, label: str, seconds: float, streams: int = 1, megabytes: float | None = None) -> float:
        rate = (megabytes or self.megabytes) * streams / seconds
        self.rows[label] = max(rate, self.rows.get(label, 0.0))
        print(f"{label:48} {rate:9.0f} MB/s", flush=True)
        return rate


class Client:
    """curl against one server, as alice."""

    def __init__(self, server: Server) -> None:
        import yaml

        self.server = server
        self.token = token_for(server.url, yaml.safe_load(server.clouds_yaml.read_text()), "spyglass-a")
        self.headers = ["-H", f"X-Auth-Token: {self.token}"]

    def image(self, name: str) -> str:
        return new_image(self.server.url, self.token, name)

    def url(self, image_id: str, what: str = "file") -> str:
        return f"{self.server.url}/v2/images/{image_id}/{what}"

    def put(self, source: Path, image_id: str, what: str = "file") -> list[str]:
        return [
            "-T",
            str(source),
            "-H",
            "Content-Type: application/octet-stream",
            *self.headers,
            self.url(image_id, what),
        ]

    def upload(self, source: Path, what: str = "file") -> str:
        image_id = self.image(what)
        curl(*self.put(source, image_id, what))
        return image_id

    def glance_direct(self, image_id: str) -> None:
        body = {"method": {"name": "glance-direct"}}
        url = f"{self.server.url}/v2/images/{image_id}/import"
        httpx.post(url, json=body, headers={"X-Auth-Token": self.token}).raise_for_status()
        while self.status(image_id) == "importing":
            time.sleep(0.05)
        assert self.status(image_id) == "active"

    def status(self, image_id: str) -> str:
        url = f"{self.server.url}/v2/images/{image_id}"
        status: str = httpx.get(url, headers={"X-Auth-Token": self.token}).json()["status"]
        return status


def parallel(commands: list[list[str]]) -> float:
    began = time.perf_counter()
    procs = [subprocess.Popen(["curl", "-sS", "-f", "-o", "/dev/null", *c]) for c in commands]
    if any(proc.wait() != 0 for proc in procs):
        raise RuntimeError("curl failed")
    return time.perf_counter() - began


def curl_rows(bench: Bench, main: Client, plain: Client) -> None:
    source = bench.source
    uploaded: list[str] = []
    growth = peak_rss_growth(
        main.server.process.pid,
        lambda: bench.record("curl upload", timed(lambda: uploaded.append(main.upload(source)))),
    )
    print(f"{'server peak RSS growth during that upload':48} {growth:9.1f} MiB (limit 64)", flush=True)
    bench.record("curl upload, inspection off", timed(lambda: plain.upload(source)))
    bench.record("curl upload", timed(lambda: main.upload(source)))
    bench.record("curl upload, inspection off", timed(lambda: plain.upload(source)))
    file_url = main.url(uploaded[0])
    bench.record("curl download, first read (from disk)", timed(lambda: curl(*main.headers, file_url)))
    bench.record("curl download (page cache)", timed(lambda: curl(*main.headers, file_url)))
    half = source.stat().st_size // 2
    bench.record(
        "curl download, Range: bytes=<half>-",
        timed(lambda: curl("-H", f"Range: bytes={half}-", *main.headers, file_url)),
        megabytes=(source.stat().st_size - half) / 1e6,
    )
    staged = main.image("staged")
    bench.record("curl stage (glance-direct)", timed(lambda: curl(*main.put(source, staged, "stage"))))
    bench.record("import of the staged data", timed(lambda: main.glance_direct(staged)))
    images = [main.image(f"p{i}") for i in range(4)]
    bench.record("4 parallel curl uploads (aggregate)", parallel([main.put(source, i) for i in images]), 4)
    downloads = [[*main.headers, main.url(i)] for i in images]
    bench.record("4 parallel curl downloads, first read (aggregate)", parallel(downloads), 4)
    bench.record("4 parallel curl downloads (page cache, aggregate)", parallel(downloads), 4)


def sdk_rows(bench: Bench, server: Server, work: Path) -> None:
    import openstack

    os.environ["OS_CLIENT_CONFIG_FILE"] = str(server.clouds_yaml)
    conn = openstack.connect(cloud="spyglass-a")
    created: list[Any] = []

    def create() -> None:
        created.append(
            conn.image.create_image(
                name="sdk",
                filename=str(bench.source),
                disk_format="raw",
                container_format="bare",
                validate_checksum=False,
            )
        )

    bench.record("openstacksdk upload (create_image)", timed(create))
    target = work / "download.raw"
    bench.record(
        "openstacksdk download (download_image)",
        timed(lambda: conn.image.download_image(created[0], output=str(target), stream=True)),
    )
    target.unlink()


def print_ratios(rows: dict[str, float]) -> None:
    hashing, reading = rows["baseline: md5+sha512, two threads"], rows["baseline: plain file read"]
    ratios = {
        "curl upload / two-thread hash rate (target >= 0.45)": rows["curl upload"] / hashing,
        "curl upload / durable disk write": rows["curl upload"]
        / rows["baseline: disk write, O_DIRECT + fdatasync"],
        "upload with / without inspection": rows["curl upload"] / rows["curl upload, inspection off"],
        "curl download (page cache) / plain file read": rows["curl download (page cache)"] / reading,
        "curl download, first read / plain read from disk": rows["curl download, first read (from disk)"]
        / rows["baseline: plain file read from disk"],
        "4 parallel / 1 upload (aggregate)": rows["4 parallel curl uploads (aggregate)"]
        / rows["curl upload"],
        "4 parallel / 1 download (aggregate)": rows["4 parallel curl downloads (page cache, aggregate)"]
        / rows["curl download (page cache)"],
        "sdk upload / two-thread hash rate": rows["openstacksdk upload (create_image)"] / hashing,
    }
    for label, ratio in ratios.items():
        print(f"{label:56} {ratio:6.2f}", flush=True)


# ---- downloads against another revision, in the same run -------------------------------------------


def splice_get(url: str, headers: dict[str, str]) -> tuple[int, float]:
    """GET `url` (HTTP/1.1), its body spliced from the socket into /dev/null: the bytes and seconds
    from the request to the last byte."""
    parts = urlsplit(url)
    lines = [f"GET {parts.path} HTTP/1.1", f"Host: {parts.netloc}", "Connection: close"]
    request = "\r\n".join([*lines, *(f"{k}: {v}" for k, v in headers.items()), "", ""]).encode()
    with socket.create_connection((parts.hostname, parts.port)) as sock:
        began = time.perf_counter()
        sock.sendall(request)
        head = b""
        while b"\r\n\r\n" not in head:
            more = sock.recv(65536)
            if not more:
                raise RuntimeError("connection closed before the response headers")
            head += more
        head, _, got = head.partition(b"\r\n\r\n")
        status = head.split(b" ", 2)[1]
        if status not in (b"200", b"206"):
            raise RuntimeError(f"status {status.decode()}")
        fields = dict(line.lower().split(b":", 1) for line in head.split(b"\r\n")[1:])
        length, received = int(fields[b"content-length"]), len(got)
        pipe_out, pipe_in = os.pipe()
        null = os.open(os.devnull, os.O_WRONLY)
        try:
            while received < length:
                moved = os.splice(sock.fileno(), pipe_in, min(length - received, 1 << 20))
                if not moved:
                    break
                received += moved
                while moved:
                    moved -= os.splice(pipe_out, null, moved)
        finally:
            for fd in (pipe_out, pipe_in, null):
                os.close(fd)
        seconds = time.perf_counter() - began
    if received != length:
        raise RuntimeError(f"short body: {received} of {length} bytes")
    return received, seconds


def curl_get(url: str, headers: dict[str, str]) -> tuple[int, float]:
    """GET `url` with curl into /dev/null: the bytes and curl's own time (no process start-up)."""
    flags = [arg for k, v in headers.items() for arg in ("-H", f"{k}: {v}")]
    done = subprocess.run(
        ["curl", "-sS", "-f", "-o", "/dev/null", "-w", "%{size_download} %{time_total}", *flags, url],
        check=True,
        capture_output=True,
        text=True,
    )
    size, seconds = done.stdout.split()
    return int(size), float(seconds)


CLIENTS: dict[str, Callable[[str, dict[str, str]], tuple[int, float]]] = {
    "curl": curl_get,
    "splice": splice_get,
}


def cpu_seconds(pid: int) -> float:
    """The user and system CPU time the process has used so far (all its threads)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def export_revision(rev: str, target: Path) -> Path:
    """The files of `rev` (git archive), for a server of that code on this virtual environment."""
    target.mkdir()
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", rev], check=True, capture_output=True)
    subprocess.run(["tar", "-x", "-C", str(target)], input=archive.stdout, check=True)
    return target


@dataclass(frozen=True)
class Kind:
    """One kind of download in the comparison: its Range header, and whether the image's file is
    dropped from the page cache first (then the bytes come from the disk)."""

    range: str | None = None
    from_disk: bool = False


def compare_downloads(
    source: Path, work: Path, revs: dict[str, str], rounds: int, notifications: str
) -> None:
    """`revs`: the git revision of "old", and of "new" when it is not this working tree."""
    env = {"SPYGLASS_NOTIFICATIONS_TRANSPORT_URL": notifications} if notifications else {}
    trees = {
        side: {"PYTHONPATH": str(export_revision(rev, work / f"{side}-tree"))} for side, rev in revs.items()
    }
    servers = {side: start_server(work / side, env={**env, **trees.get(side, {})}) for side in ("new", "old")}
    try:
        clients = {side: Client(server) for side, server in servers.items()}
        urls = {side: client.url(client.upload(source)) for side, client in clients.items()}
        size = source.stat().st_size
        half = size // 2
        kinds = {
            "whole": Kind(),
            "Range: bytes=<half>-": Kind(f"bytes={half}-"),
            "whole, from the disk": Kind(from_disk=True),
        }
        rates: dict[tuple[str, str, str], list[float]] = {}
        cpu: dict[tuple[str, str], float] = {}  # (kind, side) -> server CPU seconds per GB
        cold = dict.fromkeys(servers, True)  # uploads bypass the page cache
        for turn in range(rounds):
            order = ["new", "old"] if turn % 2 == 0 else ["old", "new"]
            for tool, get in CLIENTS.items():
                for name, kind in kinds.items():
                    for side in order:
                        if kind.from_disk:
                            evict_copies(servers[side].data_dir, size)
                        elif cold[side]:  # a cached download: the read that fills the cache is not timed
                            get(urls[side], {"X-Auth-Token": clients[side].token})
                        cold[side] = kind.from_disk
                        headers = {
                            "X-Auth-Token": clients[side].token,
                            **({"Range": kind.range} if kind.range else {}),
                        }
                        pid = servers[side].process.pid
                        before = cpu_seconds(pid)
                        got, seconds = get(urls[side], headers)
                        used = cpu_seconds(pid) - before
                        if got != (size - half if kind.range else size):
                            raise RuntimeError(f"{side} sent {got} bytes")
                        rates.setdefault((tool, name, side), []).append(got / seconds / 1e6)
                        cpu[(name, side)] = cpu.get((name, side), 0.0) + used / (got / 1e9) / rounds / len(
                            CLIENTS
                        )
        print_comparison(rates, cpu, revs, rounds)
    finally:
        for server in servers.values():
            stop_server(server)


def evict_copies(data_dir: Path, size: int) -> None:
    """Drop from the page cache every file of `size` bytes under the server's data directory."""
    for path in data_dir.rglob("*"):
        if path.is_file() and path.stat().st_size == size:
            evict(path)


def print_comparison(
    rates: dict[tuple[str, str, str], list[float]],
    cpu: dict[tuple[str, str], float],
    revs: dict[str, str],
    rounds: int,
) -> None:
    new = revs.get("new", "this working tree")
    print(f"downloads, MB/s, {rounds} rounds alternating; new = {new}, old = {revs['old']}")
    columns = ("new best", "old best", "ratio", "new med", "old med", "ratio")
    print(f"{'client, what':40}", *(f"{name:>9}" for name in columns))
    for tool, kind, side in rates:
        if side != "new":
            continue
        new_rates, old_rates = rates[(tool, kind, "new")], rates[(tool, kind, "old")]
        best = max(new_rates), max(old_rates)
        median = statistics.median(new_rates), statistics.median(old_rates)
        print(
            f"{tool + ', ' + kind:40} {best[0]:9.0f} {best[1]:9.0f} {best[0] / best[1]:9.2f}"
            f" {median[0]:9.0f} {median[1]:9.0f} {median[0] / median[1]:9.2f}",
            flush=True,
        )
    print("server CPU seconds per GB sent (mean over the downloads of the kind):")
    for kind in dict.fromkeys(kind for kind, _ in cpu):
        new_cpu, old_cpu = cpu[(kind, "new")], cpu[(kind, "old")]
        print(
            f"  {kind:38} new {new_cpu:.3f}  old {old_cpu:.3f}  old/new {old_cpu / new_cpu:.2f}", flush=True
        )
    print(json.dumps({" ".join(key): [round(r) for r in value] for key, value in rates.items()}))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--size-mib", type=int, default=2048)
    parser.add_argument("--dir", default=tempfile.gettempdir())
    parser.add_argument("--old", metavar="REV", help="compare downloads with this git revision")
    parser.add_argument("--new", metavar="REV", help="with --old: this revision instead of the working tree")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--notifications", default="", metavar="URL", help="image.send to this bus")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(dir=args.dir, prefix="spyglass-bench-"))
    source = work / "image.raw"
    generate(source, args.size_mib)
    if args.old:
        try:
            revs = {"old": args.old, **({"new": args.new} if args.new else {})}
            compare_downloads(source, work, revs, args.rounds, args.notifications)
        finally:
            shutil.rmtree(work, ignore_errors=True)
        return
    bench = Bench(source)
    read_file(source)  # warm the page cache for every reader alike
    bench.record("baseline: md5+sha512, two threads", timed(lambda: hash_two_threads(source)))
    bench.record("baseline: plain file read", timed(lambda: read_file(source)))
    bench.record(
        "baseline: disk write, O_DIRECT + fdatasync",
        timed(lambda: durable_write(source, work / "disk.raw")),
    )
    bench.record("baseline: plain file read from disk", timed(lambda: read_cold(source)))
    read_file(source)

    server = start_server(work / "data")
    plain = start_server(work / "plain", env={"SPYGLASS_DISK_FORMAT_INSPECTION": "false"})
    try:
        curl_rows(bench, Client(server), Client(plain))
        stop_server(plain)
        sdk_rows(bench, server, work)
    finally:
        stop_server(plain)
        stop_server(server)
        shutil.rmtree(work, ignore_errors=True)
    print_ratios(bench.rows)
    print(json.dumps({label: round(value) for label, value in bench.rows.items()}))


if __name__ == "__main__":
    main()
