"""The byte limit of a direct upload (`POST /jobs`, `/v1/listen`): `MAX_UPLOAD_BYTES`, or Lambda's
payload cap in Lambda. `api_lambda.body_limits` enforces it on the bytes read for every route; the
routes enforce it exactly while streaming to S3."""

from __future__ import annotations

from shared.errors import PayloadTooLarge
from shared.settings import Settings

FORM_OVERHEAD_BYTES = 64 * 1024  # multipart boundaries, part headers and the small form fields


def upload_limit(settings: Settings, lambda_mode: bool) -> tuple[int, PayloadTooLarge]:
    """The byte limit for a direct upload, and the error that explains it."""
    if lambda_mode and settings.max_lambda_upload_bytes < settings.max_upload_bytes:
        limit = settings.max_lambda_upload_bytes
        return limit, PayloadTooLarge(
            f"File too large for a direct upload through the Lambda API (limit {limit} bytes, "
            "Lambda's payload cap): upload larger files with a presigned S3 upload instead"
        )
    limit = settings.max_upload_bytes
    return limit, PayloadTooLarge(f"File too large: the limit is {limit} bytes")
