"""`openstack image quota show`: the image quotas of the project of the token, with their usage."""

from __future__ import annotations

import argparse
from collections.abc import Iterable
from typing import Any

from osc_lib.command import command

from spyglass_osc.commands import _client

# Glance's resources, in the order an operator reads them, with their units.
UNITS = {
    "image_size_total": "MiB",
    "image_stage_total": "MiB",
    "image_count_total": "images",
    "image_count_uploading": "images",
}


class ImageQuotaShow(command.Lister):
    """Show your project's image quotas: each resource's limit and usage (-1: no limit)."""

    def get_parser(self, prog_name: str) -> argparse.ArgumentParser:
        return super().get_parser(prog_name)

    def take_action(self, parsed_args: argparse.Namespace) -> tuple[tuple[str, ...], Iterable[Any]]:
        found = _client(self).quota_usage()
        names = [n for n in UNITS if n in found] + sorted(n for n in found if n not in UNITS)
        rows = [(n, found[n]["limit"], found[n]["usage"], UNITS.get(n, "")) for n in names]
        return ("Resource", "Limit", "Usage", "Unit"), rows
