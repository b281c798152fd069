"""A local S3-compatible server for the tests: moto's S3 in server mode, plus the expiry rule of presigned URLs.

moto serves the S3 REST API but does not refuse a presigned URL whose ``X-Amz-Date`` + ``X-Amz-Expires`` lies in the
past; real S3 answers such a request with 403 ``AccessDenied`` "Request has expired". This wrapper adds that rule so a
test can watch a signed media URL stop working.

Run: python tests/support/s3_server.py PORT
"""

import sys
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs

from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
from werkzeug.serving import run_simple

EXPIRED = (b'<?xml version="1.0" encoding="UTF-8"?><Error><Code>AccessDenied</Code>'
           b"<Message>Request has expired</Message></Error>")


def expiring(app):
    def wrapper(environ, start_response):
        query = parse_qs(environ.get("QUERY_STRING", ""))
        if "X-Amz-Expires" in query and "X-Amz-Date" in query:
            signed_at = datetime.strptime(query["X-Amz-Date"][0], "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
            if datetime.now(UTC) > signed_at + timedelta(seconds=int(query["X-Amz-Expires"][0])):
                start_response("403 Forbidden", [("Content-Type", "application/xml")])
                return [EXPIRED]
        return app(environ, start_response)

    return wrapper


if __name__ == "__main__":
    run_simple("127.0.0.1", int(sys.argv[1]), expiring(DomainDispatcherApplication(create_backend_app)),
               threaded=True)
