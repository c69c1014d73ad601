"""`--override-impact` on the core commands that can cut consumers off an image.

cliff calls these hooks for `openstack image delete`, `image remove project` and `image set`
(entry points `openstack.cli.image_delete`, ...). With the option, every Image API request of the
command carries `X-Spyglass-Override-Impact: true`, so Spyglass proceeds even though consumer
projects downloaded the image recently (README "Making sharing safe").
"""

from __future__ import annotations

import argparse

from cliff import hooks

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
