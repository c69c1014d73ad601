"""The options of the Swift and S3 stores, apart from the drivers: reading a configuration must not
import python-swiftclient or boto3 (about a second of start-up) when no such store is configured."""

from __future__ import annotations

from dataclasses import dataclass

MiB = 1024 * 1024
SWIFT_MAX_OBJECT = 5 * 1024 * MiB
MIN_PART_SIZE = 5 * MiB  # S3's floor for every part but the last
MAX_PART_SIZE = 5 * 1024 * MiB


@dataclass(frozen=True)
class SwiftConfig:
    """Where and how to store. `auth_version` "1" is tempauth-style v1.0 (`user` is
    `account:user`, `key` its key); "3" is Keystone v3 password auth in `project_name`."""

    container: str
    auth_url: str
    user: str
    key: str
    auth_version: str = "1"
    project_name: str | None = None
    user_domain_name: str = "Default"
    project_domain_name: str = "Default"
    region_name: str | None = None
    interface: str = "public"
    # Use this storage URL instead of the one the auth service names.
    storage_url: str | None = None
    segment_size: int = 200 * MiB
    # Blobs up to this size are kept in memory until commit and stored as one plain object.
    buffer_size: int = 16 * MiB
    # Default: "<container>_segments".
    segment_container: str | None = None
    timeout: float = 60.0
    retries: int = 3
    cacert: str | None = None
    insecure: bool = False
    name: str = "swift"

    def __post_init__(self) -> None:
        if not 0 < self.segment_size <= SWIFT_MAX_OBJECT:
            raise ValueError(f"segment_size must be between 1 byte and 5 GiB, not {self.segment_size}")
        if not 0 <= self.buffer_size <= self.segment_size:
            raise ValueError("buffer_size must be between 0 and segment_size")
        if self.auth_version not in ("1", "3"):
            raise ValueError(f"auth_version must be '1' or '3', not {self.auth_version!r}")
        if self.auth_version == "3" and not self.project_name:
            raise ValueError("Keystone v3 auth needs project_name")
        if not self.container or "/" in self.container:
            raise ValueError(f"invalid container name {self.container!r}")

    @property
    def segments(self) -> str:
        return self.segment_container or f"{self.container}_segments"


@dataclass(frozen=True)
class S3Config:
    bucket: str
    endpoint_url: str | None = None  # None: AWS
    region: str = "us-east-1"
    access_key: str | None = None  # None: boto3's own credential chain
    secret_key: str | None = None
    # Path-style URLs (http://host/bucket/key), which most self-hosted stores need.
    path_style: bool = False
    part_size: int = 64 * MiB
    timeout: float = 60.0
    retries: int = 3
    cacert: str | None = None
    insecure: bool = False
    # botocore's default sends a CRC32 of every body; "when_required" is for stores that reject it.
    request_checksum_calculation: str = "when_supported"
    name: str = "s3"

    def __post_init__(self) -> None:
        if not MIN_PART_SIZE <= self.part_size <= MAX_PART_SIZE:
            raise ValueError(f"part_size must be between 5 MiB and 5 GiB, not {self.part_size}")
        if not 3 <= len(self.bucket) <= 63:
            raise ValueError(f"invalid bucket name {self.bucket!r}")
        if self.request_checksum_calculation not in ("when_supported", "when_required"):
            raise ValueError("request_checksum_calculation is 'when_supported' or 'when_required'")
