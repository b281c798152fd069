"""Where paid media lives.

Covers, photos and logos go to the default storage and are public. Lesson and item media go to the ``private``
storage, which is never served directly: on local disk it sits outside the public ``/media/tenants/`` route and is
streamed by a checked view; on S3 its objects are private and are handed out only as short-lived signed URLs.
"""

from django.core.files.storage import storages


def private_storage():
    """The configured private storage, looked up when a field or the media view needs it."""
    return storages["private"]
