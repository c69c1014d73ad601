"""Blob stores: where image bytes live. See base.BlobStore for the interface."""

from spyglass.blobs.base import BlobNotFound, BlobStore, BlobStoreFull, BlobWriter
from spyglass.blobs.copying import copy_blob
from spyglass.blobs.filesystem import FilesystemStore
from spyglass.blobs.memory import MemoryStore

__all__ = [
    "BlobNotFound",
    "BlobStore",
    "BlobStoreFull",
    "BlobWriter",
    "FilesystemStore",
    "MemoryStore",
    "copy_blob",
]
