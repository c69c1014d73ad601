"""The cost of one authorization, in microseconds, with the policy rules as compiled predicates,
against two baselines in the same run: the Python rules Spyglass had before policy files (the
visibility rule plus a role/owner predicate, written out here) and oslo.policy's own Enforcer
evaluating the same check strings.

    .venv/bin/python bench/policy_checks.py [--calls 20000] [--rounds 3]

Rounds alternate the three, so drift on a shared machine hits each; the best round is printed with
the others. Prints numbers, asserts nothing.
"""

from __future__ import annotations

import argparse
import timeit
from collections.abc import Callable

from oslo_config import cfg
from oslo_policy import policy as oslo

from spyglass.context import RequestContext
from spyglass.images import policy
from spyglass.images.visibility import can_show

CALLER = RequestContext(user_id="u", project_id="p1", roles=frozenset({"member", "reader"}))
# Another project's public image (get_image, download_image) and the caller's own (modify_image).
PUBLIC = policy.Target(owner="p2", visibility="public")
OWN = policy.Target(owner="p1", visibility="private")
CASES = (
    (policy.Action.GET_IMAGE, PUBLIC),
    (policy.Action.DOWNLOAD_IMAGE, PUBLIC),
    (policy.Action.MODIFY_IMAGE, OWN),
)


def _before(action: policy.Action, target: policy.Target) -> Callable[[], bool]:
    """The shape of the pre-policy-file code: the visibility rule, then a Python predicate."""

    def allowed() -> bool:
        visible = can_show(CALLER, target.visibility, target.owner, target.member_status)
        if action is policy.Action.MODIFY_IMAGE:
            rule = CALLER.is_admin or (CALLER.can_write and target.owner == CALLER.project_id)
        else:
            rule = CALLER.can_read
        return visible and CALLER.project_id is not None and rule

    return allowed


def _oslo(action: policy.Action, target: policy.Target) -> Callable[[], bool]:
    conf = cfg.ConfigOpts()
    conf([], project="spyglass-bench", default_config_files=[], default_config_dirs=[])
    enforcer = oslo.Enforcer(conf, use_conf=False)
    rules = {**policy.BASE_RULES, **{a.value: check for a, check in policy.RULES.items()}}
    enforcer.set_rules(oslo.Rules.from_dict(rules), use_conf=False)
    creds = {**policy.credentials(CALLER), "roles": sorted(policy.credentials(CALLER)["roles"])}

    def allowed() -> bool:
        visible = can_show(CALLER, target.visibility, target.owner, target.member_status)
        found = policy.as_dict(CALLER, action, target)
        return visible and bool(enforcer.enforce(action.value, found, creds))

    return allowed


def _compiled(action: policy.Action, target: policy.Target) -> Callable[[], bool]:
    return lambda: policy.permits(CALLER, action, target)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=20000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    ways = {"before (Python rules)": _before, "oslo.policy Enforcer": _oslo, "compiled (Spyglass)": _compiled}
    for action, target in CASES:
        results: dict[str, list[float]] = {name: [] for name in ways}
        calls = {name: make(action, target) for name, make in ways.items()}
        assert len({call() for call in calls.values()}) == 1, "the three must agree"
        for _ in range(args.rounds):
            for name, call in calls.items():
                results[name].append(timeit.timeit(call, number=args.calls) / args.calls * 1e6)
        base = min(results["before (Python rules)"])
        print(f"{action.value}:")
        for name, times in results.items():
            rounds = ", ".join(f"{t:.1f}" for t in times)
            print(f"  {name:24} best {min(times):7.1f} us  x{min(times) / base:5.2f}   rounds: {rounds}")


if __name__ == "__main__":
    main()
