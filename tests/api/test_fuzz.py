"""Bad input never gives a 500: hypothesis drives the list query string, create bodies, PATCH
documents and image ids. The test client re-raises any server error, so a crash fails the test."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote, urlencode

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from tests.api.helpers import create
from tests.conftest import Callers

FUZZ = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
LIST_KEYS = [
    "limit",
    "marker",
    "sort",
    "sort_key",
    "sort_dir",
    "name",
    "id",
    "status",
    "disk_format",
    "container_format",
    "owner",
    "visibility",
    "member_status",
    "tag",
    "size_min",
    "size_max",
    "protected",
    "os_hidden",
    "created_at",
    "updated_at",
    "size",
    "virtual_size",
    "min_ram",
    "min_disk",
    "checksum",
    "os_hash_value",
    "hw_disk_bus",
]
IMAGE_KEYS = [
    "id",
    "name",
    "visibility",
    "protected",
    "os_hidden",
    "disk_format",
    "container_format",
    "min_ram",
    "min_disk",
    "owner",
    "tags",
    "status",
    "size",
    "checksum",
    "locations",
    "os_glance_x",
    "hw_disk_bus",
    "owner_specified.openstack.md5",
]
text = st.text(max_size=40)
integers = st.one_of(st.integers(), st.integers(min_value=-(2**70), max_value=2**70))
scalar_strings = st.one_of(
    text,
    integers.map(str),
    st.sampled_from(["asc", "desc", "true", "false", "raw", "bare", "public", "all", "active", ""]),
    st.builds(
        lambda k, d: f"{k}:{d}", st.sampled_from(LIST_KEYS), st.sampled_from(["asc", "desc", "up", ""])
    ),
    st.builds(
        lambda op, t: f"{op}:{t}", st.sampled_from(["gt", "gte", "lt", "lte", "eq", "neq", "in", "x"]), text
    ),
    st.datetimes().map(lambda d: d.isoformat() + "Z"),
    st.uuids().map(str),
)
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | text,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(text, children, max_size=4),
    max_leaves=10,
)


@FUZZ
@given(st.lists(st.tuples(st.one_of(st.sampled_from(LIST_KEYS), text), scalar_strings), max_size=6))
def test_list_query_never_500(api: Callers, params: list[tuple[str, str]]) -> None:
    response = api.alice.get("/v2/images?" + urlencode(params))
    assert response.status_code in (200, 400), response.text


@FUZZ
@given(st.dictionaries(st.one_of(st.sampled_from(IMAGE_KEYS), text), st.one_of(json_values, scalar_strings)))
def test_create_body_never_500(api: Callers, body: dict[str, Any]) -> None:
    response = api.alice.post("/v2/images", json=body)
    assert response.status_code in (201, 400, 403, 409, 413), response.text


@FUZZ
@given(st.binary(max_size=200))
def test_create_raw_bytes_never_500(api: Callers, raw: bytes) -> None:
    response = api.alice.post("/v2/images", content=raw, headers={"Content-Type": "application/json"})
    assert response.status_code in (201, 400, 403, 409, 413), response.text


patch_ops = st.lists(
    st.one_of(
        st.fixed_dictionaries(
            {
                "op": st.sampled_from(["add", "replace", "remove", "test", "move"]),
                "path": st.one_of(
                    st.sampled_from([*IMAGE_KEYS, "tags/-", "tags/0", "tags/9", "a~1b", "~2", ""]).map(
                        lambda k: "/" + k
                    ),
                    text,
                ),
            },
            optional={"value": st.one_of(json_values, scalar_strings)},
        ),
        st.dictionaries(st.sampled_from(["add", "replace", "remove", "op", "path", "value"]), json_values),
        json_values,
    ),
    max_size=4,
)


@FUZZ
@given(
    patch_ops,
    st.sampled_from(
        [
            "application/openstack-images-v2.1-json-patch",
            "application/openstack-images-v2.0-json-patch",
            "application/json",
        ]
    ),
)
def test_patch_never_500(api: Callers, ops: Any, media: str) -> None:
    image = create(api.alice, name="fuzz", tags=["a"], extra="x")
    response = api.alice.request(
        "PATCH", f"/v2/images/{image['id']}", json=ops, headers={"Content-Type": media}
    )
    assert response.status_code in (200, 400, 403, 409, 413, 415), response.text


@FUZZ
@given(st.text(min_size=1, max_size=60))
def test_image_ids_never_500(api: Callers, image_id: str) -> None:
    assume(image_id not in (".", ".."))  # the client resolves dot segments before sending
    url = f"/v2/images/{quote(image_id, safe='')}"
    # An encoded slash may make the path end in "/", which Starlette answers with a redirect.
    calls = [("GET", url), ("DELETE", url), ("GET", f"{url}/file"), ("PUT", f"{url}/tags/x")]
    for method, path in [*calls, ("POST", f"{url}/actions/deactivate")]:
        response = api.alice.request(method, path, follow_redirects=False)
        assert response.status_code in (404, 405, 307), (method, path, response.status_code)


@FUZZ
@given(st.text(min_size=1, max_size=300))
def test_tag_names_never_500(api: Callers, tag: str) -> None:
    image = create(api.alice)
    url = f"/v2/images/{image['id']}/tags/{quote(tag, safe='')}"
    assert api.alice.put(url).status_code in (204, 400, 404)
    assert api.alice.delete(url).status_code in (204, 404)


@FUZZ
@given(st.one_of(text, st.sampled_from(["application/octet-stream; charset=x", "", " ", "*/*"])))
def test_upload_content_types_never_500(api: Callers, media: str) -> None:
    image = create(api.alice)
    try:
        headers = {"Content-Type": media}
        response = api.alice.put(f"/v2/images/{image['id']}/file", content=b"abc", headers=headers)
    except (UnicodeEncodeError, ValueError):
        return  # not a header the client can even send
    assert response.status_code in (204, 400, 415), response.text


def test_an_in_list_with_a_bare_line_break_is_400(api: Callers) -> None:
    """Found by test_list_query_never_500: the csv reader refused `in:\\n0` and the list answered 500."""
    response = api.alice.get("/v2/images?" + urlencode({"name": "in:\n0"}))
    assert response.status_code == 400 and "in:" in response.text
