"""Upload throughput of signed images next to unsigned ones, on one real `spyglass serve`.

Generates a file (default 1 GiB), signs it (RSA-PSS with SHA-256, and ECC_SECP521R1 with SHA-512),
starts a server whose certificate directory holds the two certificates, then uploads the file with
curl as an unsigned image and as each signed one, alternating, best of `--rounds` each. Prints MB/s,
the ratio of each signed upload to the unsigned one, and, as baselines from the same run, the hash
the signature needs alone (hashlib, one thread) and md5+sha512 in two threads (the unsigned
upload's hashing). Numbers only; nothing is asserted.

    .venv/bin/python bench/signed_upload.py [--size-mib 1024] [--rounds 3] [--dir /tmp]
"""

from __future__ import annotations

import argparse
import hashlib
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa, utils

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.data_path import CHUNK, Client, curl, generate, hash_two_threads  # noqa: E402
from tests.e2e.conftest import start_server, stop_server  # noqa: E402
from tests.signing import certificate, private_key, store_certificate  # noqa: E402

SCHEMES = {"RSA-PSS": "SHA-256", "ECC_SECP521R1": "SHA-512"}
ALGORITHMS = {"SHA-256": hashes.SHA256, "SHA-512": hashes.SHA512}


def file_digest(path: Path, method: str) -> bytes:
    hasher = hashlib.new(ALGORITHMS[method].name)
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK):
            hasher.update(chunk)
    return hasher.digest()


def signature(key: Any, digest: bytes, method: str) -> bytes:
    algorithm = ALGORITHMS[method]()
    prehashed = utils.Prehashed(algorithm)
    if isinstance(key, rsa.RSAPrivateKey):
        pss = padding.PSS(mgf=padding.MGF1(algorithm), salt_length=padding.PSS.MAX_LENGTH)
        return key.sign(digest, pss, prehashed)
    return key.sign(digest, ec.ECDSA(prehashed))


def signed_properties(source: Path, certs: Path, key_type: str) -> dict[str, str]:
    import base64

    method = SCHEMES[key_type]
    key = private_key(key_type)
    value = signature(key, file_digest(source, method), method)
    return {
        "img_signature": base64.b64encode(value).decode(),
        "img_signature_hash_method": method,
        "img_signature_key_type": key_type,
        "img_signature_certificate_uuid": store_certificate(certs, certificate(key)),
    }


def create(client: Client, name: str, properties: dict[str, str]) -> str:
    body = {"name": name, "disk_format": "raw", "container_format": "bare", **properties}
    response = httpx.post(f"{client.server.url}/v2/images", json=body, headers={"X-Auth-Token": client.token})
    response.raise_for_status()
    image_id: str = response.json()["id"]
    return image_id


def upload_rate(client: Client, source: Path, properties: dict[str, str], megabytes: float) -> float:
    image_id = create(client, "bench", properties)
    began = time.perf_counter()
    curl(*client.put(source, image_id))
    rate = megabytes / (time.perf_counter() - began)
    status = httpx.get(f"{client.server.url}/v2/images/{image_id}", headers={"X-Auth-Token": client.token})
    if status.json()["status"] != "active":
        raise SystemExit(f"the upload did not activate the image: {status.json()['status']}")
    # Free the disk for the next round.
    httpx.delete(f"{client.server.url}/v2/images/{image_id}", headers={"X-Auth-Token": client.token})
    return rate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--dir", default=None)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="spyglass-signed-", dir=args.dir))
    try:
        run(work, args.size_mib, args.rounds)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def run(work: Path, size_mib: int, rounds: int) -> None:
    source = work / "image.raw"
    generate(source, size_mib)
    megabytes = source.stat().st_size / 1e6
    for method in ("SHA-256", "SHA-512"):
        seconds = _timed(lambda m=method: file_digest(source, m))  # type: ignore[misc]
        print(f"{'baseline: ' + method + ' alone, 1 thread':48} {megabytes / seconds:9.0f} MB/s")
    seconds = _timed(lambda: hash_two_threads(source))
    print(f"{'baseline: md5+sha512, 2 threads':48} {megabytes / seconds:9.0f} MB/s")

    certs = work / "certs"
    variants: dict[str, dict[str, str]] = {"unsigned": {}}
    for key_type in SCHEMES:
        variants[key_type] = signed_properties(source, certs, key_type)
    server = start_server(work / "data", env={"SPYGLASS_SIGNATURE_CERTIFICATE_DIR": str(certs)})
    try:
        client = Client(server)
        best = dict.fromkeys(variants, 0.0)
        for _ in range(rounds):
            for name, properties in variants.items():
                best[name] = max(best[name], upload_rate(client, source, properties, megabytes))
    finally:
        stop_server(server)
    for name, rate in best.items():
        label = "upload, unsigned" if name == "unsigned" else f"upload, signed {name} {SCHEMES[name]}"
        print(f"{label:48} {rate:9.0f} MB/s")
    for name in SCHEMES:
        print(f"{'ratio signed ' + name + ' / unsigned':48} {best[name] / best['unsigned']:9.2f}")


def _timed(action: Any) -> float:
    began = time.perf_counter()
    action()
    return time.perf_counter() - began


if __name__ == "__main__":
    main()
