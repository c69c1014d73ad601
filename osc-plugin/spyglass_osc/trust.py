"""`openstack image trust add|list|delete` (trusted owners) and `openstack image leave`."""

from __future__ import annotations

import argparse
from collections.abc import Iterable
from typing import Any

from osc_lib.command import command

from spyglass_osc.commands import _client, _image_argument

RULE_COLUMNS = ("ID", "Owner", "Owner Domain", "Created At")


def _rule(rule: dict[str, Any]) -> tuple[Any, ...]:
    return (rule["id"], rule.get("owner"), rule.get("owner_domain"), rule["created_at"])


class ImageTrustAdd(command.ShowOne):
    """Trust an owner project (or every project of a domain): its shares to your project start accepted."""

    def get_parser(self, prog_name: str) -> argparse.ArgumentParser:
        parser = super().get_parser(prog_name)
        which = parser.add_mutually_exclusive_group(required=True)
        which.add_argument("--owner", metavar="<project-id>", help="Owner project to trust (ID)")
        which.add_argument(
            "--owner-domain", metavar="<domain-id>", help="Domain whose projects to trust (ID)"
        )
        return parser

    def take_action(self, parsed_args: argparse.Namespace) -> tuple[tuple[str, ...], tuple[Any, ...]]:
        if parsed_args.owner is not None:
            body = {"owner": parsed_args.owner}
        else:
            body = {"owner_domain": parsed_args.owner_domain}
        return RULE_COLUMNS, _rule(_client(self).trust_add(body))


class ImageTrustList(command.Lister):
    """List the owners and domains your project trusts."""

    def take_action(self, parsed_args: argparse.Namespace) -> tuple[tuple[str, ...], Iterable[Any]]:
        return RULE_COLUMNS, [_rule(r) for r in _client(self).trust_list()]


class ImageTrustDelete(command.Command):
    """Stop trusting: new shares from that owner wait for your answer again."""

    def get_parser(self, prog_name: str) -> argparse.ArgumentParser:
        parser = super().get_parser(prog_name)
        parser.add_argument("rule", metavar="<rule-id>", nargs="+", help="Rule(s) to delete (ID)")
        return parser

    def take_action(self, parsed_args: argparse.Namespace) -> None:
        client = _client(self)
        for rule_id in parsed_args.rule:
            client.trust_delete(rule_id)


class ImageLeave(command.Command):
    """Leave an image shared with your project: your project stops being one of its members."""

    def get_parser(self, prog_name: str) -> argparse.ArgumentParser:
        parser = super().get_parser(prog_name)
        _image_argument(parser, "Image to leave (name or ID)")
        parser.add_argument(
            "--project", metavar="<project-id>", help="Member project to remove (admins; default: yours)"
        )
        return parser

    def take_action(self, parsed_args: argparse.Namespace) -> None:
        client = _client(self)
        client.leave(client.find_image(parsed_args.image), parsed_args.project)
