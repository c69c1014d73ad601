"""`openstack image deprecate|undeprecate|notices` and `openstack image family latest`: deprecation
with a successor, and families (Spyglass extensions)."""

from __future__ import annotations

import argparse
import logging
from collections.abc import Iterable
from typing import Any

from osc_lib.command import command

from spyglass_osc.commands import _client, _image_argument, _image_columns

log = logging.getLogger(__name__)
# Notice field -> column title.
COLUMNS = {
    "image_id": "Image ID",
    "image_name": "Image Name",
    "owner": "Owner",
    "state": "State",
    "replacement": "Replacement",
    "obsolete_at": "Obsolete At",
    "delete_at": "Delete At",
    "reason": "Reason",
}


class ImageDeprecate(command.ShowOne):
    """Deprecate an image: name its replacement, when other projects lose it and when it is deleted."""

    def get_parser(self, prog_name: str) -> argparse.ArgumentParser:
        parser = super().get_parser(prog_name)
        _image_argument(parser, "Image to deprecate (name or ID)")
        parser.add_argument(
            "--replacement", metavar="<image>", help="The image that replaces it (name or ID)"
        )
        parser.add_argument(
            "--obsolete-at",
            metavar="<time>",
            help="UTC time (2030-01-31T00:00:00Z) from which other projects cannot download it",
        )
        parser.add_argument(
            "--delete-at", metavar="<time>", help="UTC time at which it is deleted (into the recycle bin)"
        )
        return parser

    def take_action(self, parsed_args: argparse.Namespace) -> tuple[tuple[str, ...], tuple[Any, ...]]:
        client = _client(self)
        image_id = client.find_image(parsed_args.image)
        replacement = client.find_image(parsed_args.replacement) if parsed_args.replacement else None
        terms = {
            "replacement": replacement,
            "obsolete_at": parsed_args.obsolete_at,
            "delete_at": parsed_args.delete_at,
        }
        return _image_columns(client.deprecate(image_id, terms))


class ImageUndeprecate(command.ShowOne):
    """End an image's deprecation, with its scheduled obsolescence and deletion."""

    def get_parser(self, prog_name: str) -> argparse.ArgumentParser:
        parser = super().get_parser(prog_name)
        _image_argument(parser, "Image (name or ID)")
        return parser

    def take_action(self, parsed_args: argparse.Namespace) -> tuple[tuple[str, ...], tuple[Any, ...]]:
        client = _client(self)
        return _image_columns(client.undeprecate(client.find_image(parsed_args.image)))


class ImageFamilyLatest(command.ShowOne):
    """Show the newest active, non-deprecated image of a family (property spyglass_family) you can use."""

    def get_parser(self, prog_name: str) -> argparse.ArgumentParser:
        parser = super().get_parser(prog_name)
        parser.add_argument("family", metavar="<family>", help="The family (spyglass_family value)")
        return parser

    def take_action(self, parsed_args: argparse.Namespace) -> tuple[tuple[str, ...], tuple[Any, ...]]:
        return _image_columns(_client(self).family_latest(parsed_args.family))


class ImageNotices(command.Lister):
    """List the deprecated images your project was offered or downloaded, and their replacements."""

    def take_action(self, parsed_args: argparse.Namespace) -> tuple[tuple[str, ...], Iterable[Any]]:
        rows = _client(self).notices()
        for row in rows:
            if row["state"] == "obsolete":
                log.warning("image %s is obsolete: use %s", row["image_id"], row["replacement"] or "another")
        columns = (
            "Image ID",
            "Image Name",
            "Owner",
            "State",
            "Replacement",
            "Obsolete At",
            "Delete At",
            "Reason",
        )
        keys = (
            "image_id",
            "image_name",
            "owner",
            "state",
            "replacement",
            "obsolete_at",
            "delete_at",
            "reason",
        )
        return columns, [tuple(r[k] for k in keys) for r in rows]
