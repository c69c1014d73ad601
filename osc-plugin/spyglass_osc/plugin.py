"""The plugin module python-openstackclient loads (entry point `openstack.cli.extension`).

Its commands are the `openstack.spyglass.v2` entry points; `make_client` gives them a
SpyglassClient on the image endpoint of the authenticated session.
"""

from __future__ import annotations

import argparse
from typing import Any

from osc_lib import utils

from spyglass_osc.client import SpyglassClient

API_NAME = "spyglass"
API_VERSION_OPTION = "os_spyglass_api_version"
DEFAULT_API_VERSION = "2"
API_VERSIONS = ("2",)


def make_client(instance: Any) -> SpyglassClient:
    return SpyglassClient(instance.session, region_name=instance.region_name, interface=instance.interface)


def build_option_parser(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    parser.add_argument(
        "--os-spyglass-api-version",
        metavar="<spyglass-api-version>",
        default=utils.env("OS_SPYGLASS_API_VERSION"),
        help=f"Spyglass extensions API version, default={DEFAULT_API_VERSION} (Env: OS_SPYGLASS_API_VERSION)",
    )
    return parser


def check_api_version(check_version: str) -> bool:
    return check_version in API_VERSIONS
