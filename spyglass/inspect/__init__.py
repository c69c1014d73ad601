"""Disk format inspection: what an uploaded image really is, its virtual size, and whether to refuse it.

Shared images are run by other projects, so an image that makes the hypervisor read a host file
(a qcow2 backing file or external data file, VMDK extents in other files, a format mismatch that a
probing consumer would follow) is a cross-tenant attack. Spyglass inspects every upload in the same
pass as hashing, without QEMU and in bounded memory::

    inspector = FormatInspector()
    for chunk in stream:
        inspector.feed(chunk)          # may raise InspectionError early
    detected = inspector.finish(total_size)
    check(image.disk_format, detected)  # raises InspectionError to refuse
    image.virtual_size = virtual_size(image.disk_format, detected)

Formats: raw (with gpt/mbr detection), qcow2, vmdk, vhd, vhdx, vdi, iso; qed, luks, bochs, cloop
and parallels are recognised so that they are never taken for raw. `InspectionError` is an
`Invalid` error, so the API answers 400 with its message.

Setting: `disk_format_inspection` (boolean, on by default). When off, uploads are stored without
inspection and virtual_size stays null, as in a Glance without format inspection.
"""

from spyglass.inspect.model import Detected, InspectionError
from spyglass.inspect.policy import check, virtual_size
from spyglass.inspect.stream import FormatInspector

__all__ = ["Detected", "FormatInspector", "InspectionError", "check", "virtual_size"]
