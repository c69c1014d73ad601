"""The rules' two readings agree, and the defaults are Glance 33's.

Spyglass compiles the parsed check strings into its own predicates (spyglass.images.policy_language);
here each rule, the defaults and a set of check strings using every kind of check, is evaluated both
ways, by the compiled predicate and by oslo.policy's own Enforcer, over callers x targets.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
from oslo_config import cfg
from oslo_policy import policy as oslo

from spyglass.context import RequestContext
from spyglass.images import policy_language
from spyglass.images.policy import BASE_RULES, RULES, Action, Target, as_dict, credentials

# Check strings beyond the defaults: negation, constants, dotted credentials, a formatted role,
# booleans of the target and a reference to a rule the file defines.
EXTRA = {
    "x_not": "not role:reader",
    "x_always": "@",
    "x_never": "!",
    "x_user_owner": "user_id:%(owner)s or domain_id:%(owner)s",
    "x_not_private": "project_id:%(owner)s and not 'private':%(visibility)s",
    "x_role_from_target": "role:%(visibility)s",
    "x_recycled": "'True':%(recycled)s or 'accepted':%(member_status)s",
    "x_alias": "rule:x_not_private or rule:context_is_admin",
    "x_empty": "",
}
ROLE_SETS = ({"reader"}, {"member"}, {"admin"}, {"service"}, {"public"}, set())
OWNERS = ("p1", "p2", None)
STATUSES = (None, "accepted")
MEMBER_IDS = (None, "p1", "p2")


def _oslo_enforcer(rules: dict[str, str]) -> oslo.Enforcer:
    conf = cfg.ConfigOpts()
    conf([], project="spyglass-test", default_config_files=[], default_config_dirs=[])
    enforcer = oslo.Enforcer(conf, use_conf=False)
    enforcer.set_rules(oslo.Rules.from_dict(rules), use_conf=False)
    return enforcer


def _cases() -> list[tuple[RequestContext, Target]]:
    cases = []
    for roles, owner, visibility, status, member_id in itertools.product(
        ROLE_SETS, OWNERS, ("private", "shared", "community", "public"), STATUSES, MEMBER_IDS
    ):
        ctx = RequestContext(user_id="p2", project_id="p1", roles=frozenset(roles), domain_id="p1")
        target = Target(owner=owner, visibility=visibility, member_status=status, member_id=member_id)
        cases.append((ctx, target))
    return cases


def test_compiled_rules_answer_as_oslo_policy() -> None:
    rules = {**BASE_RULES, **{a.value: check for a, check in RULES.items()}, **EXTRA}
    book = policy_language.build(rules)
    enforcer = _oslo_enforcer(rules)
    compared = 0
    for ctx, target in _cases():
        creds = credentials(ctx)
        oslo_creds = {**creds, "roles": sorted(creds["roles"])}
        found = as_dict(ctx, Action.GET_IMAGE, target)
        for name in rules:
            expected = bool(enforcer.enforce(name, found, oslo_creds))
            assert book.allows(name, found, creds) is expected, (name, ctx.roles, found)
            compared += 1
    assert compared > 10_000


# Glance 33's defaults, composed from glance/policies/base.py as glance/policies/image.py and
# discovery.py use them (ADMIN = rule:context_is_admin = role:admin).
_ADMIN = "rule:context_is_admin"
_REACH = (
    "project_id:%(project_id)s or project_id:%(member_id)s or 'community':%(visibility)s "
    "or 'public':%(visibility)s or 'shared':%(visibility)s"
)
_PROJECT_MEMBER = f"{_ADMIN} or (role:member and project_id:%(project_id)s)"
GLANCE_33 = {
    # base.ADMIN_OR_PROJECT_READER_GET_IMAGE
    "get_image": f"{_ADMIN} or (role:reader and ({_REACH}))",
    # base.ADMIN_OR_PROJECT_READER
    "get_images": f"{_ADMIN} or (role:reader and project_id:%(project_id)s)",
    # base.ADMIN_OR_PROJECT_MEMBER_DOWNLOAD_IMAGE: readers may not download
    "download_image": f"{_ADMIN} or (role:member and ({_REACH}))",
    # base.ADMIN_OR_PROJECT_MEMBER_CREATE_IMAGE
    "add_image": f"{_ADMIN} or (role:member and project_id:%(project_id)s and project_id:%(owner)s)",
    # base.ADMIN_OR_PROJECT_MEMBER
    "modify_image": _PROJECT_MEMBER,
    "delete_image": _PROJECT_MEMBER,
    "upload_image": _PROJECT_MEMBER,
    "communitize_image": _PROJECT_MEMBER,
    "deactivate": _PROJECT_MEMBER,
    "reactivate": _PROJECT_MEMBER,
    "add_member": _PROJECT_MEMBER,
    "delete_member": _PROJECT_MEMBER,
    # base.ADMIN
    "publicize_image": _ADMIN,
    "delete_image_location": _ADMIN,
    "copy_image": _ADMIN,
    # base.ADMIN_OR_PROJECT_READER_OR_SHARED_MEMBER
    "get_member": f"{_ADMIN} or role:reader and (project_id:%(project_id)s or project_id:%(member_id)s)",
    "get_members": f"{_ADMIN} or role:reader and (project_id:%(project_id)s or project_id:%(member_id)s)",
    # base.ADMIN_OR_SHARED_MEMBER
    "modify_member": f"{_ADMIN} or (role:member and project_id:%(member_id)s)",
    # discovery.py: base.ADMIN_OR_SERVICE_ROLE
    "stores_info_detail": f"{_ADMIN} or rule:service_api",
    # base.py's own rules
    "context_is_admin": "role:admin",
    "default": "",
    "service_api": "role:service or role:admin",
}


@pytest.mark.parametrize("name", sorted(GLANCE_33))
def test_defaults_are_glance_33s(name: str) -> None:
    """Each of Glance's rules that Spyglass has parses to the same check tree as Glance 33's default
    (glance/policies/base.py, image.py, discovery.py)."""
    ours = {**BASE_RULES, **{a.value: check for a, check in RULES.items()}}
    assert _tree(ours[name]) == _tree(GLANCE_33[name])


def _tree(check: str) -> str:
    return str(oslo.Rules.from_dict({"rule": check})["rule"])


def test_every_action_has_a_default() -> None:
    assert set(RULES) == set(Action)


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("download_image: [unclosed\n", "not valid YAML or JSON"),
        ("- a list\n", "must map rule names"),
        ('"download_image": 3\n', "must be a check string"),
        ('"download_image": "role:admin or )("\n', "does not parse"),
        ('"download_image": "garbage"\n', "does not parse"),
        ('"download_image": "rule:no_such_rule"\n', "rule:no_such_rule, which is not defined"),
        ('"download_image": "rule:a"\n"a": "rule:b"\n"b": "rule:a"\n', "cycle"),
        ('"download_image": "http://example.test/check"\n', "not supported"),
    ],
)
def test_a_file_that_cannot_be_used_is_refused(tmp_path: Path, text: str, words: str) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text(text)
    with pytest.raises(policy_language.PolicyFileError, match=words.replace("(", r"\(")):
        policy_language.build({"download_image": "role:member", "context_is_admin": "role:admin"}, path)


def test_a_missing_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(policy_language.PolicyFileError, match="cannot read policy file"):
        policy_language.build({}, tmp_path / "nowhere.yaml")


def test_unknown_names_are_reported(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """Names Spyglass does not use are logged; a name the file defines for its own rules to use
    (rule:readers) is not unknown."""
    path = tmp_path / "policy.yaml"
    path.write_text('"readers": "role:reader"\n"get_image": "rule:readers"\n"get_imagez": "role:admin"\n')
    with caplog.at_level("WARNING", logger="spyglass.policy"):
        book = policy_language.build({"get_image": "role:admin"}, path)
    assert book.unknown == ("get_imagez",)
    assert "get_imagez" in caplog.text and "readers" not in caplog.text


def test_a_commented_out_sample_is_the_defaults(tmp_path: Path) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text('#"download_image": "role:reader"\n')
    book = policy_language.build({"download_image": "role:member"}, path)
    assert book.text == {"download_image": "role:member"}
