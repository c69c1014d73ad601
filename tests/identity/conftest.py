"""Fixtures of the identity tests: the real Keystone of the `identity = "keystone"` tests."""

from tests.keystone import keystone

__all__ = ["keystone"]
