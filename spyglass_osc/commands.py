"""The `openstack image ...` commands for Spyglass's sharing-safety extensions."""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterable
from typing import Any

from osc_lib.command import command

from spyglass_osc.client import SpyglassClient


def _client(cmd: command.Command) -> SpyglassClient:
    # python-openstackclient adds the attribute for each plugin at run time (API_NAME).
    client: SpyglassClient = getattr(cmd.app.client_manager, "spyglass")  # noqa: B009
    return client


def _image_argument(parser: argparse.ArgumentParser, help_text: str) -> None:
    parser.add_argument("image", metavar="<image>", help=help_text)


def _as_text(value: Any) -> Any:
    return json.dumps(value, sort_keys=True) if isinstance(value, dict) else value


def _image_columns(image: dict[str, Any]) -> tuple[tuple[str, ...], tuple[Any, ...]]:
    names = tuple(sorted(k for k in image if k not in ("self", "file", "schema")))
    return names, tuple(", ".join(image[n]) if n == "tags" else image[n] for n in names)


class ImageUsage(command.Lister):
    """Show who downloaded an image: downloads and bytes per consumer project."""

    def get_parser(self, prog_name: str) -> argparse.ArgumentParser:
        parser = super().get_parser(prog_name)
        _image_argument(parser, "Image (name or ID)")
        return parser

    def take_action(self, parsed_args: argparse.Namespace) -> tuple[tuple[str, ...], Iterable[Any]]:
        client = _client(self)
        rows = client.usage(client.find_image(parsed_args.image))
        columns = ("Project", "Downloads", "Bytes", "First Download", "Last Download")
        keys = ("project_id", "downloads", "bytes", "first_download_at", "last_download_at")
        return columns, [tuple(r[k] for k in keys) for r in rows]


class ImageCopy(command.ShowOne):
    """Copy an image you can see into your project (no data is copied; the copy is private)."""

    def get_parser(self, prog_name: str) -> argparse.ArgumentParser:
        parser = super().get_parser(prog_name)
        _image_argument(parser, "Image to copy (name or ID)")
        parser.add_argument("--name", metavar="<name>", help="Name of the copy (default: the source's)")
        return parser

    def take_action(self, parsed_args: argparse.Namespace) -> tuple[tuple[str, ...], tuple[Any, ...]]:
        client = _client(self)
        return _image_columns(client.copy(client.find_image(parsed_args.image), parsed_args.name))


class ImageRestore(command.ShowOne):
    """Restore an image from the recycle bin, with its members as they were."""

    def get_parser(self, prog_name: str) -> argparse.ArgumentParser:
        parser = super().get_parser(prog_name)
        _image_argument(parser, "Image to restore (ID)")
        return parser

    def take_action(self, parsed_args: argparse.Namespace) -> tuple[tuple[str, ...], tuple[Any, ...]]:
        client = _client(self)
        return _image_columns(client.restore(client.find_image(parsed_args.image)))


class ImageEvents(command.Lister):
    """Show the audit trail of an image (a member sees the events of its own membership)."""

    def get_parser(self, prog_name: str) -> argparse.ArgumentParser:
        parser = super().get_parser(prog_name)
        _image_argument(parser, "Image (name or ID; use the ID once you lost access)")
        return parser

    def take_action(self, parsed_args: argparse.Namespace) -> tuple[tuple[str, ...], Iterable[Any]]:
        client = _client(self)
        rows = client.events(client.find_image(parsed_args.image))
        columns = ("ID", "Type", "Member", "Actor User", "Actor Project", "Time", "Before", "After")
        return columns, [
            (
                e["id"],
                e["type"],
                e["member_id"],
                e["actor"]["user_id"],
                e["actor"]["project_id"],
                e["created_at"],
                _as_text(e["before"]),
                _as_text(e["after"]),
            )
            for e in rows
        ]


class ImageInvitations(command.Lister):
    """List the images shared with your project that await your answer."""

    def get_parser(self, prog_name: str) -> argparse.ArgumentParser:
        parser = super().get_parser(prog_name)
        parser.add_argument(
            "--status",
            default="pending",
            choices=("pending", "accepted", "rejected", "all"),
            help="Member status to list (default: pending)",
        )
        return parser

    def take_action(self, parsed_args: argparse.Namespace) -> tuple[tuple[str, ...], Iterable[Any]]:
        rows = _client(self).invitations(parsed_args.status)
        columns = ("Image ID", "Image Name", "Owner", "Status", "Created At")
        keys = ("image_id", "image_name", "owner", "status", "created_at")
        return columns, [tuple(r[k] for k in keys) for r in rows]
