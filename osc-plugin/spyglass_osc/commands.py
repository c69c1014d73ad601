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


class ImageShareBulk(command.Lister):
    """Add or remove the shares of many images with many projects in one call."""

    def get_parser(self, prog_name: str) -> argparse.ArgumentParser:
        parser = super().get_parser(prog_name)
        action = parser.add_mutually_exclusive_group(required=True)
        action.add_argument("--add", action="store_true", help="Share every image with every project")
        action.add_argument("--remove", action="store_true", help="Remove every project from every image")
        parser.add_argument(
            "--image", metavar="<image>", action="append", required=True, help="Image (name or ID; repeat)"
        )
        parser.add_argument(
            "--project", metavar="<project>", action="append", required=True, help="Project ID (repeat)"
        )
        parser.add_argument("--atomic", action="store_true", help="All or nothing")
        parser.add_argument(
            "--expires-at", metavar="<time>", help="With --add: when the shares end (ISO 8601)"
        )
        return parser

    def take_action(self, parsed_args: argparse.Namespace) -> tuple[tuple[str, ...], Iterable[Any]]:
        client = _client(self)
        body: dict[str, Any] = {
            "action": "add" if parsed_args.add else "remove",
            "images": [client.find_image(i) for i in parsed_args.image],
            "members": parsed_args.project,
            "atomic": parsed_args.atomic,
        }
        if parsed_args.expires_at:
            body["expires_at"] = parsed_args.expires_at
        applied, results = client.share_in_bulk(body)
        rows = [(r["image_id"], r["member_id"], r["status"], r["error"] or "") for r in results]
        if not applied:
            self.app.stdout.write("Nothing was changed: a pair failed in this atomic call.\n")
        return ("Image ID", "Member ID", "Status", "Error"), rows


class ImageMemberExpirySet(command.ShowOne):
    """Set or clear the date a project's share of an image ends."""

    def get_parser(self, prog_name: str) -> argparse.ArgumentParser:
        parser = super().get_parser(prog_name)
        _image_argument(parser, "Image (name or ID)")
        parser.add_argument("project", metavar="<project>", help="Member project ID")
        when = parser.add_mutually_exclusive_group(required=True)
        when.add_argument("--expires-at", metavar="<time>", help="When the share ends (ISO 8601)")
        when.add_argument("--never", action="store_true", help="The share does not end")
        return parser

    def take_action(self, parsed_args: argparse.Namespace) -> tuple[tuple[str, ...], tuple[Any, ...]]:
        client = _client(self)
        row = client.set_expiry(
            client.find_image(parsed_args.image), parsed_args.project, parsed_args.expires_at
        )
        names = ("image_id", "member_id", "status", "expires_at", "created_at", "updated_at")
        return names, tuple(row.get(n) for n in names)
