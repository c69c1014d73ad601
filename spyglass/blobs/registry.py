"""The blob stores of one deployment, by name, with a default (Glance's multi-store).

`build` turns the validated store settings into BlobStore objects once, when the application is
created. `location_url` writes where a blob lives in Glance's URL formats, never with credentials.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

from spyglass.blobs.base import BlobStore
from spyglass.blobs.configs import S3Config, SwiftConfig
from spyglass.blobs.filesystem import FilesystemStore
from spyglass.blobs.memory import MemoryStore
from spyglass.blobs.specs import FilesystemConfig, StoreSpec
from spyglass.errors import Invalid


class StoreSet(Mapping[str, BlobStore]):
    """The stores by name (in configuration order) and the default one."""

    def __init__(
        self, stores: Mapping[str, BlobStore], default: str, specs: tuple[StoreSpec, ...] = ()
    ) -> None:
        if default not in stores:
            raise ValueError(f"default store {default!r} is not one of the stores")
        self._stores = dict(stores)
        self.default_name = default
        self.specs = {spec.name: spec for spec in specs}

    @classmethod
    def single(cls, store: BlobStore) -> StoreSet:
        return cls({store.name: store}, store.name)

    def __getitem__(self, name: str) -> BlobStore:
        return self._stores[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._stores)

    def __len__(self) -> int:
        return len(self._stores)

    @property
    def default(self) -> BlobStore:
        return self._stores[self.default_name]

    def choose(self, name: str | None) -> BlobStore:
        """The store a request names (X-Image-Meta-Store), or the default when it names none."""
        if name is None or name == "":
            return self.default
        try:
            return self._stores[name]
        except KeyError:
            raise Invalid(f"Store for identifier {name} not found") from None

    def url(self, store_name: str, key: str) -> str:
        """The location URL of a blob in one of these stores (Glance's formats)."""
        store = self._stores.get(store_name)
        return location_url(store, key) if store is not None else f"{store_name}://{key}"

    def locate(self, url: str) -> tuple[str, str] | None:
        """The store and key of a location URL written in one of these stores' formats (the
        inverse of `url`); None when the URL names no configured store."""
        for name, store in self._stores.items():
            key = key_in(store, url)
            if key:
                return name, key
        return None

    def description(self, name: str) -> str:
        spec = self.specs.get(name)
        return spec.description if spec is not None else ""


def build(specs: Sequence[StoreSpec], default_name: str) -> StoreSet:
    """Open every configured store; `default_name` names the one new uploads go to."""
    stores = {spec.name: open_store(spec) for spec in specs}
    return StoreSet(stores, default_name, tuple(specs))


def open_store(spec: StoreSpec) -> BlobStore:
    config = spec.config
    if isinstance(config, FilesystemConfig):
        return FilesystemStore(config.path, name=spec.name, direct_io=config.direct_io)
    # The drivers are imported only where such a store is configured (python-swiftclient and
    # boto3 take about a second to import).
    if isinstance(config, SwiftConfig):
        from spyglass.blobs.swift import SwiftStore

        return SwiftStore(config)
    if isinstance(config, S3Config):
        from spyglass.blobs.s3 import S3Store

        return S3Store(config)
    return MemoryStore(name=spec.name)


def key_in(store: BlobStore, url: str) -> str | None:
    """The blob key a location URL names in this store, if it names one."""
    if isinstance(store, FilesystemStore):
        prefix = Path(store.root).resolve().as_uri() + "/"
    else:
        prefix = location_url(store, "")
    if not url.startswith(prefix):
        return None
    key = url[len(prefix) :]
    return key if _plain_key(key) else None


def _plain_key(key: str) -> bool:
    # Keys are single path segments (spyglass.data.transfer.new_blob_key): nothing that walks.
    return bool(key) and "/" not in key and "%" not in key and not key.startswith(".") and key.isprintable()


def location_url(store: BlobStore, key: str) -> str:
    """Where the blob lives, as Glance writes locations: file://, swift+config://, s3://."""
    if isinstance(store, FilesystemStore):
        return Path(store.root).resolve().joinpath(key).as_uri()
    config = getattr(store, "config", None)
    if isinstance(config, SwiftConfig):
        return f"swift+config://{store.name}/{config.container}/{key}"
    if isinstance(config, S3Config):
        return f"s3://{config.bucket}/{key}"
    return f"{store.name}://{key}"
