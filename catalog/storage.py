"""Where paid media lives.

Covers, photos and logos go to the default storage and are public. Lesson and item media go to the ``private``
storage, which is never served directly: on local disk it sits outside the public ``/media/tenants/`` route and is
streamed by a checked view; on S3 its objects are private and are handed out only as short-lived signed URLs.
"""

import hashlib

from django.core.files.storage import Storage, storages


class PrivateMediaStorage(Storage):
    """The ``private`` storage alias, looked up on every call.

    A FileField keeps the storage object it was given when the model loaded; this stand-in lets the field and the
    media view always agree with the configured alias, also after settings change (tests, or a process that
    reconfigures storage).
    """

    @property
    def backend(self) -> Storage:
        return storages["private"]

    def _open(self, name, mode="rb"):
        return self.backend.open(name, mode)

    def _save(self, name, content):
        return self.backend.save(name, content)

    def get_available_name(self, name, max_length=None):
        return self.backend.get_available_name(name, max_length)

    def generate_filename(self, filename):
        return self.backend.generate_filename(filename)

    def delete(self, name):
        return self.backend.delete(name)

    def exists(self, name):
        return self.backend.exists(name)

    def listdir(self, path):
        return self.backend.listdir(path)

    def size(self, name):
        return self.backend.size(name)

    def url(self, name):
        return self.backend.url(name)

    def path(self, name):
        return self.backend.path(name)


_private = PrivateMediaStorage()


def private_storage() -> Storage:
    """The private media storage (for FileFields and the media view)."""
    return _private


def private_file_sha256(name: str) -> tuple[str, int] | None:
    """The SHA-256 (hex) and size of a private file, read in 1 MB chunks; None when storage does not have it."""
    digest, size = hashlib.sha256(), 0
    try:
        with _private.open(name, "rb") as stored:
            while chunk := stored.read(1 << 20):
                digest.update(chunk)
                size += len(chunk)
    except OSError:  # FileNotFoundError locally; django-storages raises it (or an OSError) for a missing key
        return None
    return digest.hexdigest(), size
