"""The official business-code table and the exception every layer raises.

The table is the one place that ties a business code to its HTTP status and default message;
each API surface renders a :class:`KlingError` in its own body format.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

logger = logging.getLogger("mockkling")


@dataclass(frozen=True, slots=True)
class BusinessCode:
    code: int
    http_status: int
    message: str


# Source: the official "General Information" page (see docs/surfaces.md, "Error codes").
BUSINESS_CODES: dict[int, BusinessCode] = {
    c.code: c
    for c in (
        BusinessCode(1000, 401, "Authentication failed"),
        BusinessCode(1001, 401, "Authorization is empty"),
        BusinessCode(1002, 401, "Authorization is invalid"),
        BusinessCode(1003, 401, "Token is not yet valid"),
        BusinessCode(1004, 401, "Token has expired"),
        BusinessCode(1100, 429, "Account exception"),
        BusinessCode(1101, 429, "Account in arrears"),
        BusinessCode(1102, 429, "Resource pack depleted or expired"),
        BusinessCode(1103, 403, "Unauthorized access to the requested resource"),
        BusinessCode(1200, 400, "Invalid request parameters"),
        BusinessCode(1201, 400, "Invalid parameter value"),
        BusinessCode(1202, 404, "Invalid request method"),
        BusinessCode(1203, 404, "Requested resource does not exist"),
        BusinessCode(1300, 400, "Platform policy triggered"),
        BusinessCode(1301, 400, "Content security policy triggered"),
        BusinessCode(1302, 429, "Request rate exceeds the limit"),
        BusinessCode(1303, 429, "parallel task over resource pack limit"),
        BusinessCode(1304, 429, "IP whitelist policy triggered"),
        BusinessCode(5000, 500, "Server internal error"),
        BusinessCode(5001, 503, "Server temporarily unavailable"),
        BusinessCode(5002, 504, "Server internal timeout"),
    )
}


class KlingError(Exception):
    """A refusal with an official business code; the HTTP status comes from the table.

    ``http_status`` may be overridden for the few answers outside the table (405, 413).
    ``headers`` are added to the response (``Allow``, ``Retry-After``).
    """

    def __init__(
        self,
        code: int,
        message: str | None = None,
        *,
        http_status: int | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        entry = BUSINESS_CODES[code]
        self.code = code
        self.message = message or entry.message
        self.http_status = http_status or entry.http_status
        self.headers = dict(headers or {})
        super().__init__(f"{code}: {self.message}")

    def __repr__(self) -> str:
        return f"KlingError(code={self.code}, http_status={self.http_status}, message={self.message!r})"

    def to_envelope(self, request_id: str) -> dict[str, Any]:
        """The official envelope for this error."""
        return {"code": self.code, "message": self.message, "request_id": request_id, "data": None}


def invalid_value(message: str) -> KlingError:
    """The official answer to a field with a wrong value: 400 / 1201, the message names it."""
    return KlingError(1201, message)


def crashed(method: str, path: str) -> KlingError:
    """Log the exception being handled, a bug, with its traceback; return the 500 / 5000 that
    answers it, so that no traceback ever reaches a client."""
    logger.exception("unhandled error on %s %s", method, path)
    return KlingError(5000)
