"""The modes of what Spyglass writes on disk: its owner's alone, whatever the umask.

The database holds password hashes and webhook keys, image files may be private images, staged
data is image data: none is for other local users. Directories Spyglass creates are 0700, files
0600. Existing ones are tightened where that is cheap: the data directory, the SQLite database
and its -wal/-shm files at every start. Image files are not walked at start (millions of them):
new ones are 0600, and the 0700 data directory closes the default stores to others anyway.
"""

from __future__ import annotations

import os
from contextlib import suppress
from pathlib import Path

DIR_MODE = 0o700
FILE_MODE = 0o600


def private_dir(path: Path) -> Path:
    """Create the directory and its missing parents as 0700; an existing one keeps its mode."""
    missing = [p for p in (path, *path.parents) if not p.exists()]
    for directory in reversed(missing):
        try:
            directory.mkdir(mode=DIR_MODE)
        except FileExistsError:
            continue  # made meanwhile by another process
        os.chmod(directory, DIR_MODE)  # mkdir's mode passes through the umask
    return path


def tighten_dir(path: Path) -> Path:
    """Create the directory as private_dir does, and make it 0700 if it already existed."""
    private_dir(path)
    os.chmod(path, DIR_MODE)
    return path


def private_file(path: Path) -> None:
    """Create the file empty if missing; make it 0600 either way."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, FILE_MODE)
    try:
        os.fchmod(fd, FILE_MODE)
    finally:
        os.close(fd)


def tighten_file(path: Path) -> None:
    """Make an existing file 0600; a missing one stays missing."""
    with suppress(FileNotFoundError):
        os.chmod(path, FILE_MODE)
