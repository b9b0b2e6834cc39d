"""The trace form's upload, parsed in memory only: photos of the index case never touch a disk.

Starlette spools an upload to a temporary file beyond 1 MB; this parser keeps every part in memory up to the
body limit (security.UPLOAD_LIMIT), which the Guard middleware enforces before a byte more is read.
"""

from __future__ import annotations

from starlette.datastructures import FormData
from starlette.formparsers import MultiPartException, MultiPartParser
from starlette.requests import Request

from edge.console.security import PHOTO_BYTES, PHOTOS, UPLOAD_LIMIT


class InMemoryParser(MultiPartParser):
    spool_max_size = UPLOAD_LIMIT + 1  # never rolls over: the body is cut off at UPLOAD_LIMIT


class UploadRefused(ValueError):
    """A form the trace page cannot read; its message is for the person who sent it."""


async def form(request: Request) -> FormData:
    content_type = request.headers.get("content-type", "")
    if not content_type.startswith("multipart/form-data"):
        return await request.form(max_files=0, max_fields=20)
    parser = InMemoryParser(request.headers, request.stream(), max_files=PHOTOS, max_fields=20)
    try:
        return await parser.parse()
    except MultiPartException as e:
        raise UploadRefused(f"The form could not be read: {e} (at most {PHOTOS} photos).") from None


async def photos(data: FormData, name: str = "photos") -> list[tuple[str, bytes]]:
    """The non-empty files of the field, as (file name, bytes); more than PHOTOS or one too large is refused."""
    found = []
    for item in data.getlist(name):
        if isinstance(item, str):
            continue
        content = await item.read(PHOTO_BYTES + 1)
        if len(content) > PHOTO_BYTES:
            raise UploadRefused(f"{item.filename or 'a photo'} is larger than {PHOTO_BYTES // 2**20} MB.")
        if content:
            found.append((item.filename or f"photo {len(found) + 1}", content))
    if len(found) > PHOTOS:
        raise UploadRefused(f"At most {PHOTOS} photos of one person can be traced at once.")
    return found
