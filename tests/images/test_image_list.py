"""GET /v2/images/{id} and GET /v2/images: visibility, filters, sorting, paging and links."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest
from sqlalchemy import insert, update

from spyglass.db.engine import Database
from spyglass.db.tables import image_locations, images
from tests.api.helpers import active, create, message
from tests.conftest import Caller, Callers, World, reconfigure
from tests.disk_images import iso, qcow2

UNKNOWN = "00000000-0000-0000-0000-000000000000"


def ids(caller: Caller, query: str = "", **params: Any) -> list[str]:
    # httpx replaces a URL's query string with `params`, even an empty one.
    response = caller.get(f"/v2/images{query}", **({"params": params} if params else {}))
    assert response.status_code == 200, response.text
    return [i["id"] for i in response.json()["images"]]


def walk(caller: Caller, url: str) -> tuple[list[str], list[dict[str, Any]]]:
    """Follow `next` links to the end; the ids in order and every page body."""
    seen: list[str] = []
    pages: list[dict[str, Any]] = []
    while True:
        response = caller.get(url)
        assert response.status_code == 200, response.text
        body = response.json()
        pages.append(body)
        seen += [i["id"] for i in body["images"]]
        if "next" not in body:
            return seen, pages
        url = body["next"]
        assert len(pages) < 100


# ---- show ---------------------------------------------------------------------------------------------


def test_show_own_image(api: Callers) -> None:
    image = create(api.alice, name="mine", hw_disk_bus="scsi", tags=["t"])
    response = api.alice.get(f"/v2/images/{image['id']}")
    assert response.status_code == 200
    assert response.json() == image


def test_show_active_image_has_stores(api: Callers) -> None:
    image = active(api.alice)
    assert image["stores"] == "fs"


@pytest.mark.parametrize("image_id", [UNKNOWN, "nope", "6d4c8d51-391e-408c-a017", "x" * 300, "%00"])
def test_show_unknown_or_malformed_404(api: Callers, image_id: str) -> None:
    response = api.alice.get(f"/v2/images/{image_id}")
    assert response.status_code == 404
    assert "x-openstack-request-id" in response.headers


@pytest.mark.parametrize("visibility", ["private", "shared"])
def test_show_other_projects_image_404(api: Callers, visibility: str) -> None:
    image = create(api.alice, visibility=visibility)
    response = api.bob.get(f"/v2/images/{image['id']}")
    assert response.status_code == 404
    assert message(response) == f"No image found with ID {image['id']}"
    # The same answer as for an image that does not exist at all.
    assert message(api.bob.get(f"/v2/images/{UNKNOWN}")) == f"No image found with ID {UNKNOWN}"


def test_show_public_and_community_images_of_others(api: Callers) -> None:
    community = create(api.alice, visibility="community")
    public = create(api.admin, visibility="public")
    assert api.bob.get(f"/v2/images/{community['id']}").status_code == 200
    assert api.carol.get(f"/v2/images/{public['id']}").status_code == 200


def test_show_by_reader_and_admin(api: Callers) -> None:
    image = create(api.alice, visibility="private")
    assert api.rita.get(f"/v2/images/{image['id']}").status_code == 200
    assert api.admin.get(f"/v2/images/{image['id']}").status_code == 200


# ---- list: visibility and links -----------------------------------------------------------------------


def test_list_shape_and_first_link(api: Callers) -> None:
    image = create(api.alice)
    body = api.alice.get("/v2/images").json()
    assert body["first"] == "/v2/images"
    assert body["schema"] == "/v2/schemas/images"
    assert "next" not in body
    assert [i["id"] for i in body["images"]] == [image["id"]]
    assert body["images"][0] == image


def test_list_links_as_glance(api: Callers) -> None:
    made = [create(api.alice, name="mx")["id"] for _ in range(3)]
    body = api.alice.get("/v2/images?limit=2").json()
    assert body["first"] == "/v2/images?limit=2"
    assert body["next"] == f"/v2/images?limit=2&marker={body['images'][-1]['id']}"
    assert [i["id"] for i in body["images"]] == made[::-1][:2]
    last = api.alice.get(body["next"]).json()
    assert [i["id"] for i in last["images"]] == [made[0]]
    assert last["first"] == "/v2/images?limit=2"
    assert "next" not in last


def test_list_links_keep_every_parameter_but_the_marker(api: Callers) -> None:
    for _ in range(3):
        create(api.alice, name="same")
    body = api.alice.get("/v2/images?name=same&limit=1&sort=name:asc").json()
    assert body["first"] == "/v2/images?name=same&limit=1&sort=name%3Aasc"
    nxt = urlsplit(body["next"])
    assert nxt.path == "/v2/images"
    assert parse_qsl(nxt.query) == [
        ("name", "same"),
        ("limit", "1"),
        ("sort", "name:asc"),
        ("marker", body["images"][0]["id"]),
    ]


def test_a_listed_image_is_the_shown_image_with_its_extras_in_the_same_order(
    api: Callers, db: Database
) -> None:
    """Properties, tags and further locations come with the page in one statement: in the order
    show gives them (JSON keys, tags, stores), on either database."""
    names = {"zeta": "1", "Alpha": "2", "_under": "3", "beta_2": "4", "beta": "5", "\u00e9t\u00e9": "6"}
    image = active(api.alice, tags=["t-z", "T-a", "t-b"], **names)
    bare = create(api.alice, name="bare")
    at = datetime(2026, 1, 1)
    with db.write() as conn:
        for store, key, when in (("zz", "k1", at), ("mm", "k2", at + timedelta(seconds=1)), ("aa", "k3", at)):
            conn.execute(
                insert(image_locations).values(
                    image_id=image["id"], store=store, blob_key=key, created_at=when
                )
            )
    shown = api.alice.get(f"/v2/images/{image['id']}").json()
    assert shown["stores"].split(",")[1:] == ["aa", "zz", "mm"]
    for query in ("", "?limit=1&sort=created_at:asc", "?sort=name:desc"):
        listed = {i["id"]: i for i in api.alice.get(f"/v2/images{query}").json()["images"]}
        assert list(listed[image["id"]].items()) == list(shown.items())
        if bare["id"] in listed:
            assert listed[bare["id"]] == bare and bare["tags"] == []


def test_list_only_what_the_caller_may_see(api: Callers) -> None:
    mine = create(api.alice, visibility="private")["id"]
    shared = create(api.alice)["id"]
    community = create(api.alice, visibility="community")["id"]
    public = create(api.admin, visibility="public")["id"]
    assert set(ids(api.alice)) == {mine, shared, community, public}
    assert set(ids(api.rita)) == {mine, shared, community, public}
    assert ids(api.bob) == [public]
    assert set(ids(api.bob, visibility="community")) == {community}
    # An admin's default list leaves out other projects' community images, as Glance's does.
    assert set(ids(api.admin)) >= {mine, shared, public} and community not in ids(api.admin)
    assert community in ids(api.admin, visibility="community")
    assert community in ids(api.admin, visibility="all")


# ---- list: filters ------------------------------------------------------------------------------------


def test_filter_by_name_and_in(api: Callers) -> None:
    a = create(api.alice, name="alpha")["id"]
    b = create(api.alice, name="beta")["id"]
    c = create(api.alice, name="with,comma")["id"]
    assert ids(api.alice, name="alpha") == [a]
    assert set(ids(api.alice, name="in:alpha,beta")) == {a, b}
    assert set(ids(api.alice, name='in:"with,comma",beta')) == {b, c}
    assert ids(api.alice, name="gamma") == []


def test_filter_by_id_status_and_formats_with_in(api: Callers) -> None:
    raw = create(api.alice, disk_format="raw", container_format="bare")["id"]
    qcow = create(api.alice, disk_format="qcow2", container_format="ovf")["id"]
    up = active(api.alice, iso(), disk_format="iso", container_format="bare")["id"]
    assert ids(api.alice, id=raw) == [raw]
    assert set(ids(api.alice, id=f"in:{raw},{qcow},not-a-uuid")) == {raw, qcow}
    assert ids(api.alice, status="active") == [up]
    assert set(ids(api.alice, status="in:queued,active")) == {raw, qcow, up}
    assert set(ids(api.alice, disk_format="in:raw,iso")) == {raw, up}
    assert ids(api.alice, disk_format="qcow2") == [qcow]
    assert ids(api.alice, container_format="ovf") == [qcow]
    assert set(ids(api.alice, container_format="in:bare")) == {raw, up}


def test_filter_by_owner(api: Callers, world: World) -> None:
    mine = create(api.alice, visibility="community")["id"]
    theirs = create(api.bob, visibility="community")["id"]
    query = {"visibility": "community"}
    assert ids(api.alice, owner=world.projects["alpha"], **query) == [mine]
    assert ids(api.alice, owner=world.projects["beta"], **query) == [theirs]


def test_filter_by_several_tags_needs_all(api: Callers) -> None:
    both = create(api.alice, tags=["red", "blue"])["id"]
    red = create(api.alice, tags=["red"])["id"]
    assert set(ids(api.alice, tag="red")) == {both, red}
    assert ids(api.alice, "?tag=red&tag=blue") == [both]
    assert ids(api.alice, "?tag=red&tag=green") == []


def test_filter_by_size_range(api: Callers) -> None:
    small = active(api.alice, b"x" * 10)["id"]
    big = active(api.alice, b"x" * 1000)["id"]
    create(api.alice)  # no size: never matches a size filter
    assert ids(api.alice, size_min=11) == [big]
    assert ids(api.alice, size_max=999) == [small]
    assert set(ids(api.alice, size_min=10, size_max=1000)) == {small, big}
    assert ids(api.alice, size_min=1001) == []


@pytest.mark.parametrize("name", ["size_min", "size_max"])
@pytest.mark.parametrize("value", ["x", "-1", "1.5", "9" * 30])
def test_filter_size_bad_values_400(api: Callers, name: str, value: str) -> None:
    assert api.alice.get("/v2/images", params={name: value}).status_code == 400


def test_filter_by_protected(api: Callers) -> None:
    kept = create(api.alice, protected=True)["id"]
    loose = create(api.alice)["id"]
    assert ids(api.alice, protected="true") == [kept]
    assert ids(api.alice, protected="false") == [loose]
    assert api.alice.get("/v2/images?protected=maybe").status_code == 400


def test_hidden_images_are_listed_only_on_request(api: Callers) -> None:
    hidden = create(api.alice, os_hidden=True)["id"]
    shown = create(api.alice)["id"]
    assert ids(api.alice) == [shown]
    assert ids(api.alice, os_hidden="true") == [hidden]
    assert ids(api.alice, os_hidden="false") == [shown]
    assert api.alice.get("/v2/images?os_hidden=perhaps").status_code == 400
    # Hidden from lists only: it can still be shown.
    assert api.alice.get(f"/v2/images/{hidden}").status_code == 200


def test_filter_by_extra_property(api: Callers) -> None:
    scsi = create(api.alice, hw_disk_bus="scsi")["id"]
    create(api.alice, hw_disk_bus="virtio")
    create(api.alice)
    assert ids(api.alice, hw_disk_bus="scsi") == [scsi]
    assert ids(api.alice, hw_disk_bus="ide") == []
    assert ids(api.alice, never_set="x") == []


def _set_times(db: Database, image_id: str, created: datetime, updated: datetime) -> None:
    with db.write() as conn:
        conn.execute(
            update(images).where(images.c.id == image_id).values(created_at=created, updated_at=updated)
        )


@pytest.mark.parametrize("field", ["created_at", "updated_at"])
def test_filter_by_time_with_operators(api: Callers, db: Database, field: str) -> None:
    base = datetime(2030, 1, 1, 12, 0, 0)
    made = []
    for day in range(3):
        image_id = create(api.alice)["id"]
        _set_times(db, image_id, base + timedelta(days=day), base + timedelta(days=day, hours=1))
        made.append(image_id)
    first, second, third = made
    anchor = (base + timedelta(days=1, hours=1 if field == "updated_at" else 0)).strftime(
        "%Y-%m-%dT%H:%M:%SZ"
    )
    expected = {
        "gt": {third},
        "gte": {second, third},
        "lt": {first},
        "lte": {first, second},
        "eq": {second},
        "neq": {first, third},
    }
    for op, want in expected.items():
        assert set(ids(api.alice, **{field: f"{op}:{anchor}"})) == want, op
    assert set(ids(api.alice, **{field: anchor})) == {second}
    # Time zones are honoured.
    shifted = (base + timedelta(days=1, hours=3 if field == "updated_at" else 2)).strftime(
        "%Y-%m-%dT%H:%M:%S"
    )
    assert set(ids(api.alice, **{field: f"eq:{shifted}+02:00"})) == {second}


@pytest.mark.parametrize(
    "value",
    [
        "gt:yesterday",
        "gt:",
        "lt:2030-13-01T00:00:00Z",
        "9999-12-31T23:59:59-23:59",
        "0001-01-01T00:00:00+01:00",
    ],
)
def test_filter_by_time_bad_values_400(api: Callers, value: str) -> None:
    assert api.alice.get("/v2/images", params={"created_at": value}).status_code == 400


# ---- list: sorting -------------------------------------------------------------------------------------


def test_unknown_sort_key_400_as_glance(api: Callers) -> None:
    response = api.alice.get("/v2/images?sort_key=nope")
    assert response.status_code == 400
    assert response.json() == {
        "message": "Invalid sort key: nope. It must be one of the following: name, status, container_format,"
        " disk_format, size, id, created_at, updated_at.<br /><br />\n\n\n",
        "code": "400 Bad Request",
        "title": "Bad Request",
    }
    assert api.alice.get("/v2/images?sort=nope:asc").status_code == 400


@pytest.mark.parametrize(
    "query",
    [
        "sort=name:up",
        "sort=name:asc,name:desc",
        "sort=",
        "sort=name:asc&sort_key=id",
        "sort_dir=sideways",
        "sort_key=name&sort_dir=asc&sort_dir=desc&sort_dir=asc",
    ],
)
def test_bad_sort_400(api: Callers, query: str) -> None:
    assert api.alice.get(f"/v2/images?{query}").status_code == 400


def test_sort_by_name_both_syntaxes(api: Callers) -> None:
    made = {name: create(api.alice, name=name)["id"] for name in ("b", "c", "a")}
    ascending = [made[n] for n in ("a", "b", "c")]
    assert ids(api.alice, sort="name:asc") == ascending
    assert ids(api.alice, sort="name:desc") == ascending[::-1]
    assert ids(api.alice, sort="name") == ascending[::-1]
    assert ids(api.alice, sort_key="name", sort_dir="asc") == ascending
    assert ids(api.alice, sort_key="name") == ascending[::-1]


def test_sort_by_several_keys(api: Callers) -> None:
    a1 = active(api.alice, b"1", name="a")["id"]
    a2 = create(api.alice, name="a")["id"]
    b1 = active(api.alice, b"1", name="b")["id"]
    assert ids(api.alice, sort="status:asc,name:desc") == [b1, a1, a2]
    assert ids(api.alice, "?sort_key=status&sort_key=name&sort_dir=asc&sort_dir=desc") == [b1, a1, a2]
    assert ids(api.alice, "?sort_key=name&sort_key=created_at&sort_dir=asc") == [a1, a2, b1]


# ---- list: paging --------------------------------------------------------------------------------------

SORTS = [
    "",
    "sort=name:asc",
    "sort=name:desc",
    "sort=size:asc,name:desc",
    "sort=disk_format:asc,size:desc",
    "sort=status:desc,created_at:asc",
    "sort=id:asc",
    "sort_key=updated_at&sort_dir=asc",
]


@pytest.mark.parametrize("sort", SORTS)
@pytest.mark.parametrize("limit", [1, 2, 3])
def test_pages_walk_every_image_once_in_order(api: Callers, sort: str, limit: int) -> None:
    names = ["b", None, "a", "b", None, "c", "a"]
    for i, name in enumerate(names):
        if i % 3 == 0:
            data, disk_format = (b"xx", "raw") if i % 2 else (qcow2(1024), "qcow2")
            active(api.alice, data, name=name, disk_format=disk_format)
        else:
            create(api.alice, name=name, disk_format=None if i % 2 else "iso")
    everything = ids(api.alice, f"?{sort}&limit=1000" if sort else "?limit=1000")
    assert len(everything) == len(names)
    walked, pages = walk(
        api.alice, f"/v2/images?{sort}&limit={limit}" if sort else f"/v2/images?limit={limit}"
    )
    assert walked == everything
    assert all(len(p["images"]) <= limit for p in pages)


def test_bad_marker_400_as_glance(api: Callers) -> None:
    response = api.alice.get(f"/v2/images?marker={UNKNOWN}")
    assert response.status_code == 400
    assert response.json()["message"] == f"No image found with ID {UNKNOWN}<br /><br />\n\n\n"
    assert api.alice.get("/v2/images?marker=garbage").status_code == 400


def test_marker_the_caller_cannot_see_400(api: Callers) -> None:
    hidden = create(api.bob, visibility="private")["id"]
    assert api.alice.get(f"/v2/images?marker={hidden}").status_code == 400


@pytest.mark.parametrize("limit", ["0", "-1", "abc", "1.5", ""])
def test_bad_limit_400(api: Callers, limit: str) -> None:
    assert api.alice.get(f"/v2/images?limit={limit}").status_code == 400


def test_limit_above_the_maximum_is_clamped(api: Callers) -> None:
    reconfigure(api.alice.client, api_limit_max=2)
    made = [create(api.alice)["id"] for _ in range(3)]
    for limit in ("3", "1001", "9" * 40):
        body = api.alice.get(f"/v2/images?limit={limit}").json()
        assert [i["id"] for i in body["images"]] == made[::-1][:2]
        assert "next" in body


def test_default_limit(api: Callers) -> None:
    reconfigure(api.alice.client, limit_param_default=2)
    for _ in range(3):
        create(api.alice)
    body = api.alice.get("/v2/images").json()
    assert len(body["images"]) == 2
    assert body["next"].startswith("/v2/images?marker=")


@pytest.mark.parametrize("query", ["name=a%00", "hw_disk_bus=%00", "tag=%00", "x%00y=1", "status=in:a,%00"])
def test_nul_characters_in_filters_400(api: Callers, query: str) -> None:
    assert api.alice.get(f"/v2/images?{query}").status_code == 400


@pytest.mark.parametrize(
    ("query", "text"),
    [
        ("os_hidden=1", "Invalid value '1' for 'os_hidden' filter. Valid values are 'true' or 'false'."),
        ("protected=yes", "Invalid value 'yes' for 'protected' filter. Valid values are 'true' or 'false'."),
        ("changes-since=2030-01-01T00:00:00Z", 'The "changes-since" filter is no longer available on v2.'),
        ("member_status=bogus", "Invalid status: bogus"),
        ("visibility=bogus", "Invalid visibility value: bogus"),
        ("sort=name:up", "Invalid sort direction: up"),
        ("sort_key=name&sort_dir=up", "Invalid sort direction: up"),
        ("sort=name&sort_dir=asc", "Old and new sorting syntax cannot be combined"),
        (
            "sort_key=name&sort_key=id&sort_key=size&sort_dir=asc&sort_dir=desc",
            "Number of sort dirs does not match the number of sort keys",
        ),
        ("limit=x", "limit param must be an integer"),
        ("limit=-2", "limit param must be positive"),
    ],
)
def test_list_refusals_with_glance_messages(api: Callers, query: str, text: str) -> None:
    response = api.alice.get(f"/v2/images?{query}")
    assert response.status_code == 400
    assert message(response) == text


def test_boolean_filters_as_glance_reads_them(api: Callers) -> None:
    hidden = create(api.alice, os_hidden=True)["id"]
    assert ids(api.alice, os_hidden="TRUE") == [hidden]
    assert api.alice.get("/v2/images?protected=True").status_code == 400


def test_sort_keys_and_directions_are_stripped(api: Callers) -> None:
    made = {name: create(api.alice, name=name)["id"] for name in ("b", "a")}
    assert ids(api.alice, sort=" name : asc ") == [made["a"], made["b"]]


@pytest.mark.parametrize("name", ["min_ram", "min_disk"])
def test_32_bit_filters_refuse_larger_numbers(api: Callers, name: str) -> None:
    """min_ram and min_disk are 32-bit columns; PostgreSQL would fail on a larger comparison."""
    assert api.alice.get(f"/v2/images?{name}=gt:2147483647").status_code == 200
    response = api.alice.get(f"/v2/images?{name}=gt:2147483648")
    assert response.status_code == 400
    assert "out of range" in response.json()["message"]
