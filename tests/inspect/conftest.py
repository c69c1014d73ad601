"""Fixtures for the inspection tests: qemu-img (installed on demand) and a session cache of images.

`images.create(...)` and `images.convert(...)` run qemu-img once per distinct image and return its
path; tests skip only when qemu-img is missing and `scripts/ensure-qemu-img.sh` cannot install it.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.inspect.helpers import ImageFactory

ROOT = Path(__file__).resolve().parents[2]


def _qemu_img() -> str | None:
    found = shutil.which("qemu-img")
    if found:
        return found
    script = ROOT / "scripts" / "ensure-qemu-img.sh"
    result = subprocess.run([str(script)], capture_output=True, text=True, check=False)
    return result.stdout.strip() if result.returncode == 0 else None


@pytest.fixture(scope="session")
def images(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ImageFactory]:
    qemu_img = _qemu_img()
    if qemu_img is None:
        pytest.skip("qemu-img is not installed and scripts/ensure-qemu-img.sh could not install it")
    yield ImageFactory(qemu_img, tmp_path_factory.mktemp("images"))
