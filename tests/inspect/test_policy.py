"""The acceptance table of `check` and `virtual_size`, over every declared x detected combination."""

from __future__ import annotations

import pytest

from spyglass.inspect import Detected, InspectionError, check, virtual_size

DETECTED = {
    "raw": Detected("raw", 10, size=10),
    "raw-gpt": Detected("raw", 10, partition_table="gpt", size=10),
    "iso": Detected("iso", 8, size=10),
    "vhd-fixed": Detected("vhd", 9, variant="fixed", size=10),
    "vhd-dynamic": Detected("vhd", 900, variant="dynamic", size=10),
    "qcow2": Detected("qcow2", 900, variant="v3", size=10),
    "vmdk": Detected("vmdk", 900, variant="streamOptimized", size=10),
    "vhdx": Detected("vhdx", 900, size=10),
    "vdi": Detected("vdi", 900, variant="dynamic", size=10),
    "ploop": Detected("ploop", None, size=10),
}
# declared disk_format -> the detections it accepts
ACCEPTS = {
    "raw": {"raw", "raw-gpt", "iso", "vhd-fixed"},
    "qcow2": {"qcow2"},
    "vmdk": {"vmdk"},
    "vhd": {"vhd-fixed", "vhd-dynamic"},
    "vhdx": {"vhdx"},
    "vdi": {"vdi"},
    "iso": {"iso"},
    "ploop": set(DETECTED),
    "ami": set(DETECTED),
    "ari": set(DETECTED),
    "aki": set(DETECTED),
    None: set(DETECTED),
    "qed": set(),
}


@pytest.mark.parametrize("declared", ACCEPTS)
@pytest.mark.parametrize("name", DETECTED)
def test_acceptance_table(declared: str | None, name: str) -> None:
    detected = DETECTED[name]
    if name in ACCEPTS[declared]:
        check(declared, detected)
    else:
        with pytest.raises(InspectionError) as refused:
            check(declared, detected)
        assert "disk_format" in refused.value.message


@pytest.mark.parametrize("declared", ACCEPTS)
def test_hazards_are_refused_whatever_the_declaration(declared: str | None) -> None:
    detected = Detected("qcow2", 900, hazards=("The qcow2 image has a backing file.", "And more."))
    with pytest.raises(InspectionError, match=r"^The qcow2 image has a backing file. And more.$"):
        check(declared, detected)


def test_mismatch_messages_name_both_formats() -> None:
    with pytest.raises(
        InspectionError, match="The image data is a qcow2 \\(v3\\) image, but its disk_format is raw"
    ):
        check("raw", DETECTED["qcow2"])
    with pytest.raises(
        InspectionError, match=r"not iso as its disk_format says: it has no ISO 9660 .* it is raw data"
    ):
        check("iso", DETECTED["raw"])
    with pytest.raises(InspectionError, match=r"not vdi .* it is a vhdx image"):
        check("vdi", DETECTED["vhdx"])
    with pytest.raises(InspectionError, match="cannot confirm the qed format"):
        check("qed", DETECTED["raw"])


@pytest.mark.parametrize(
    ("declared", "name", "expected"),
    [
        ("raw", "raw", 10),
        ("raw", "iso", 10),  # what a consumer reading it as raw sees: the whole file
        ("raw", "vhd-fixed", 10),
        ("iso", "iso", 8),
        ("vhd", "vhd-fixed", 9),
        ("qcow2", "qcow2", 900),
        (None, "qcow2", 900),
        ("ami", "raw", None),
        ("aki", "raw", None),
        ("ari", "raw", None),
        ("ploop", "ploop", None),
    ],
)
def test_virtual_size_to_store(declared: str | None, name: str, expected: int | None) -> None:
    assert virtual_size(declared, DETECTED[name]) == expected


def test_inspection_error_is_a_bad_request() -> None:
    from spyglass.api.errors import status_of

    assert status_of(InspectionError("refused")) == 400
