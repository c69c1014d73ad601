"""Rules in the oslo.policy language: defaults, an operator's policy file over them, compiled once.

oslo.policy (the library every OpenStack service uses) parses the check strings, so an operator's
Glance `policy.yaml` means here what it means to Glance: `role:`, `rule:`, `project_id:%(owner)s`,
`'public':%(visibility)s`, `and` / `or` / `not`, `@` and `!`. The parsed trees are then compiled
into plain predicates over (target, credentials): oslo.policy's own check objects inspect each
check's signature on every call, which costs tens of microseconds per rule, and an image request is
authorized several times. Each compiled predicate answers as oslo.policy's check of the same kind;
tests/images/test_policy_language.py compares the two over many targets and callers.

Loading is strict where oslo.policy is lenient, so that a mistake in the file cannot quietly open or
close the service: a file that is not a mapping of names to check strings, a check string that does
not parse, a `rule:` naming a rule that does not exist (oslo.policy would fall back to `default`),
a cycle of rules, or a kind of check that calls out (`http:`) stops the start with a message. Names
the file sets that nothing uses are reported as a warning.
"""

from __future__ import annotations

import ast
import logging
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from oslo_policy import _checks, policy

from spyglass.settings import SettingsError

LOG = logging.getLogger("spyglass.policy")

Creds = Mapping[str, Any]
Predicate = Callable[[Mapping[str, Any], Creds], bool]


class PolicyFileError(SettingsError):
    """The policy file cannot be used: Spyglass does not start with it."""


@dataclass(frozen=True)
class Rulebook:
    """Every rule by name, compiled; `text` keeps the effective check strings."""

    checks: Mapping[str, Predicate]
    text: Mapping[str, str]
    unknown: tuple[str, ...] = ()

    def allows(self, name: str, target: Mapping[str, Any], creds: Creds) -> bool:
        return self.checks[name](target, creds)


def build(defaults: Mapping[str, str], path: Path | None = None) -> Rulebook:
    """The defaults, overridden by the rules of the file at `path` (YAML or JSON)."""
    overrides = _read(path) if path is not None else {}
    text = {**defaults, **overrides}
    trees = {name: _parse(name, check, path) for name, check in text.items()}
    compiled: dict[str, Predicate] = {}
    for name in defaults:
        _compile_rule(name, trees, compiled, (), path)
    unknown = tuple(sorted(set(overrides) - set(compiled)))
    if unknown:
        LOG.warning(
            "policy file %s: Spyglass has no rule named %s; these entries are ignored",
            path,
            ", ".join(unknown),
        )
    return Rulebook(compiled, text, unknown)


def _read(path: Path) -> dict[str, str]:
    try:
        data = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise PolicyFileError(f"cannot read policy file {path}: {exc.strerror}") from exc
    except yaml.YAMLError as exc:
        raise PolicyFileError(f"policy file {path} is not valid YAML or JSON: {exc}") from exc
    if data is None:
        # A sample file with every rule commented out.
        return {}
    if not isinstance(data, dict):
        raise PolicyFileError(f"policy file {path} must map rule names to check strings")
    for name, check in data.items():
        if not isinstance(name, str) or not isinstance(check, str):
            raise PolicyFileError(
                f"policy file {path}: rule {name!r} must be a check string, not {type(check).__name__}"
            )
    return data


class _Failures(logging.Handler):
    """Collects what oslo.policy's parser logs when it gives up on a check string (it then fails
    closed with `!` instead of raising)."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def _parse(name: str, check: str, path: Path | None) -> _checks.BaseCheck:
    parser_log = logging.getLogger("oslo_policy._parser")
    failures = _Failures()
    parser_log.addHandler(failures)
    propagate, parser_log.propagate = parser_log.propagate, False
    try:
        tree = policy.Rules.from_dict({name: check})[name]
    finally:
        parser_log.removeHandler(failures)
        parser_log.propagate = propagate
    if failures.messages:
        where = f"policy file {path}" if path else "default policy"
        raise PolicyFileError(f"{where}: rule {name!r} does not parse: {check!r} ({failures.messages[0]})")
    return tree


def _compile_rule(
    name: str,
    trees: Mapping[str, _checks.BaseCheck],
    compiled: dict[str, Predicate],
    chain: tuple[str, ...],
    path: Path | None,
) -> Predicate:
    if name in compiled:
        return compiled[name]
    if name in chain:
        cycle = " -> ".join((*chain, name))
        raise PolicyFileError(f"policy file {path}: rules refer to each other in a cycle: {cycle}")
    if name not in trees:
        raise PolicyFileError(
            f"policy file {path}: rule {chain[-1]!r} refers to rule:{name}, which is not defined"
        )

    def rule(check: _checks.BaseCheck) -> Predicate:
        if isinstance(check, _checks.RuleCheck):
            return _compile_rule(check.match, trees, compiled, (*chain, name), path)
        return _compile(check, rule, name, path)

    compiled[name] = rule(trees[name])
    return compiled[name]


def _compile(
    check: _checks.BaseCheck, sub: Callable[[_checks.BaseCheck], Predicate], name: str, path: Path | None
) -> Predicate:
    if isinstance(check, _checks.TrueCheck):
        return lambda _t, _c: True
    if isinstance(check, _checks.FalseCheck):
        return lambda _t, _c: False
    if isinstance(check, _checks.NotCheck):
        inner = sub(check.rule)
        return lambda t, c: not inner(t, c)
    if isinstance(check, _checks.AndCheck):
        return _all_of(tuple(sub(part) for part in check.rules))
    if isinstance(check, _checks.OrCheck):
        return _any_of(tuple(sub(part) for part in check.rules))
    if isinstance(check, _checks.RoleCheck):
        return _role(check.match)
    if type(check) is _checks.GenericCheck:
        return _generic(check.kind, check.match)
    raise PolicyFileError(f"policy file {path}: rule {name!r}: the check {str(check)!r} is not supported")


# Plain loops rather than all()/any() over a generator: this is the per-request path.
def _all_of(parts: tuple[Predicate, ...]) -> Predicate:
    def all_of(target: Mapping[str, Any], creds: Creds) -> bool:
        for part in parts:  # noqa: SIM110
            if not part(target, creds):
                return False
        return True

    return all_of


def _any_of(parts: tuple[Predicate, ...]) -> Predicate:
    def any_of(target: Mapping[str, Any], creds: Creds) -> bool:
        for part in parts:  # noqa: SIM110
            if part(target, creds):
                return True
        return False

    return any_of


_MISSING = object()
_ONE_KEY = re.compile(r"%\((\w+)\)s")


def _formatter(match: str) -> Callable[[Mapping[str, Any]], str | None]:
    """`match % target`, or None where oslo.policy fails the check for a missing target key."""
    if "%" not in match:
        return lambda _t: match
    one_key = _ONE_KEY.fullmatch(match)
    if one_key is not None:
        # The usual form, `%(owner)s`, without formatting or a KeyError.
        key = one_key.group(1)

        def value_of(target: Mapping[str, Any]) -> str | None:
            found = target.get(key, _MISSING)
            return None if found is _MISSING else str(found)

        return value_of

    def formatted(target: Mapping[str, Any]) -> str | None:
        try:
            return match % target
        except KeyError:
            return None

    return formatted


def _role(match: str) -> Predicate:
    if "%" not in match:
        role = match.lower()
        return lambda _t, creds: role in creds["roles"]
    value = _formatter(match)

    def has_role(target: Mapping[str, Any], creds: Creds) -> bool:
        wanted = value(target)
        return wanted is not None and wanted.lower() in creds["roles"]

    return has_role


def _generic(kind: str, match: str) -> Predicate:
    value = _formatter(match)
    try:
        # A quoted constant on the left compares with the target's value: 'public':%(visibility)s
        literal = str(ast.literal_eval(kind))
    except (ValueError, SyntaxError):
        pass
    else:
        return lambda t, _c: value(t) == literal
    keys = kind.split(".")

    def matches(target: Mapping[str, Any], creds: Creds) -> bool:
        wanted = value(target)
        return wanted is not None and _found(creds, keys, wanted)

    return matches


def _found(found: Any, keys: list[str], wanted: str) -> bool:
    # As oslo.policy's GenericCheck: walk the credentials by the dotted kind; a list matches if
    # any of its items does.
    for index, key in enumerate(keys):
        try:
            found = found[key]
        except (KeyError, TypeError):
            return False
        if isinstance(found, list | tuple | set | frozenset):
            rest = keys[index + 1 :]
            return any(_found(item, rest, wanted) for item in found)
    return wanted == str(found)
