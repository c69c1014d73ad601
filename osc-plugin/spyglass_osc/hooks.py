"""`--override-impact` on the core commands that can cut consumers off an image, and `--expires-at`
on `openstack image add project`.

cliff calls these hooks for `openstack image delete`, `image remove project` and `image set`
(entry points `openstack.cli.image_delete`, ...). With the option, every Image API request of the
command carries `X-Spyglass-Override-Impact: true`, so Spyglass proceeds even though consumer
projects downloaded the image recently (README "Making sharing safe").
"""

from __future__ import annotations

import argparse
from datetime import datetime
from typing import Any

from cliff import hooks
from openstackclient.identity import common as identity_common
from osc_lib import exceptions

OVERRIDE_HEADER = "X-Spyglass-Override-Impact"


class OverrideImpact(hooks.CommandHook):
    def get_parser(self, parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
        parser.add_argument(
            "--override-impact",
            action="store_true",
            help="Proceed even if consumer projects downloaded the image recently (Spyglass)",
        )
        return parser

    def get_epilog(self) -> str:
        return ""

    def before(self, parsed_args: argparse.Namespace) -> argparse.Namespace:
        if parsed_args.override_impact:
            # The image client is an openstacksdk proxy, a keystoneauth Adapter: its additional
            # headers go with every request it makes.
            image_client = getattr(self.cmd.app, "client_manager").image  # noqa: B009 - osc's App
            image_client.additional_headers[OVERRIDE_HEADER] = "true"
        return parsed_args

    def after(self, parsed_args: argparse.Namespace, return_code: int) -> int:
        return return_code


class ExpiresAt(hooks.CommandHook):
    """`--expires-at` on `openstack image add project`: the new share ends at that time.

    The core command's request body cannot carry the field, so once the member is added the hook
    sets its expiry (PUT .../members/{project}/expiry). The time is checked before anything is
    added, so a malformed one adds nothing.
    """

    def get_parser(self, parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
        parser.add_argument(
            "--expires-at",
            metavar="<time>",
            help="The share ends at this time, ISO 8601 such as 2027-01-31T00:00:00Z (Spyglass)",
        )
        return parser

    def get_epilog(self) -> str:
        return ""

    def before(self, parsed_args: argparse.Namespace) -> argparse.Namespace:
        if parsed_args.expires_at:
            try:
                datetime.fromisoformat(parsed_args.expires_at.replace("Z", "+00:00"))
            except ValueError as exc:
                raise exceptions.CommandError(f"--expires-at: not an ISO 8601 time: {exc}") from exc
        return parsed_args

    def after(self, parsed_args: argparse.Namespace, return_code: Any) -> Any:
        # A display command passes its (columns, data) here, not a return code; it only gets here
        # when the member was added.
        if not parsed_args.expires_at:
            return return_code
        manager = getattr(self.cmd.app, "client_manager")  # noqa: B009 - osc's App
        image = manager.image.find_image(parsed_args.image, ignore_missing=False)
        project = identity_common.find_project_id_sdk(
            manager.sdk_connection.identity, parsed_args.project, parsed_args.project_domain
        )
        manager.spyglass.set_expiry(image.id, project, parsed_args.expires_at)
        return return_code
