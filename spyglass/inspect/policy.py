"""What Spyglass accepts: the detected format against the declared disk_format, and hazards.

The rules, in order: a hazard (a backing file, an external data file, extents in other files, a
parent image, a format Spyglass refuses) is refused whatever was declared. Declared formats that
cannot be inspected (ami, ari, aki, ploop) are then taken as declared. Declared `raw` accepts data
that is raw to QEMU too (plain raw, an ISO, a fixed VHD); anything structured declared as raw is
the dangerous mismatch, since a consumer that probes would open it as that structure. Any other
declared format must be exactly what the data is.
"""

from __future__ import annotations

from spyglass.inspect.model import Detected, InspectionError

UNINSPECTABLE = frozenset({"ami", "ari", "aki", "ploop"})
STRUCTURED = frozenset({"qcow2", "vmdk", "vhd", "vhdx", "vdi", "iso"})

_NOT_THAT_FORMAT = {
    "qcow2": "it has no qcow2 header (QFI\\xfb)",
    "vmdk": "it has no VMDK sparse header (KDMV)",
    "vhd": "it has neither a dynamic VHD header at its start nor a fixed VHD footer at its end",
    "vhdx": "it has no VHDX file identifier (vhdxfile)",
    "vdi": "it has no VDI header signature",
    "iso": "it has no ISO 9660 primary volume descriptor at 32 KiB",
}


def check(declared_disk_format: str | None, detected: Detected) -> None:
    """Raise `InspectionError` unless data of this kind may be stored under this disk_format."""
    if detected.hazards:
        raise InspectionError(" ".join(detected.hazards))
    declared = declared_disk_format
    if declared is None or declared in UNINSPECTABLE:
        return
    if declared == "raw":
        if not readable_as_raw(detected):
            raise InspectionError(
                f"The image data is {describe(detected)}, but its disk_format is raw. "
                f"Set disk_format to {detected.format}, or upload the raw disk."
            )
        return
    if detected.format != declared:
        raise InspectionError(_mismatch(declared, detected))


def virtual_size(declared_disk_format: str | None, detected: Detected) -> int | None:
    """The virtual_size to store: what a consumer reading the data as declared will see."""
    if declared_disk_format in UNINSPECTABLE:
        return None
    if declared_disk_format == "raw":
        return detected.size
    return detected.virtual_size


def readable_as_raw(detected: Detected) -> bool:
    return detected.format in ("raw", "iso") or (detected.format, detected.variant) == ("vhd", "fixed")


def describe(detected: Detected) -> str:
    if detected.format == "raw":
        return "raw data"
    variant = f" ({detected.variant})" if detected.variant else ""
    article = "an" if detected.format[:1] in ("a", "e", "i", "o", "u") else "a"
    return f"{article} {detected.format}{variant} image"


def _mismatch(declared: str, detected: Detected) -> str:
    reason = _NOT_THAT_FORMAT.get(declared, f"Spyglass cannot confirm the {declared} format")
    return f"The image data is not {declared} as its disk_format says: {reason}; it is {describe(detected)}."
