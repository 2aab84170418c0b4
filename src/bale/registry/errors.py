"""Turn a registry's answer into one clear RegistryError line."""

from __future__ import annotations

import httpx

from bale.errors import InvalidArgument, RegistryError
from bale.oci import jsonread

_MAX_ERROR_BODY = 64 << 10

_HINTS = {
    401: "log in with `bale login {host}`, or check the credentials stored for it",
    403: "the account is not allowed to do this on that repository",
    404: "check the repository name, the tag or the digest",
    429: "the registry is rate limiting; try again later",
}


def _read_some(response: httpx.Response) -> bytes:
    if response.is_stream_consumed or hasattr(response, "_content"):
        return response.content[:_MAX_ERROR_BODY]
    body = b""
    try:
        for chunk in response.iter_raw():
            body += chunk
            if len(body) >= _MAX_ERROR_BODY:
                break
    except httpx.HTTPError:
        pass
    finally:
        response.close()
    return body[:_MAX_ERROR_BODY]


def response_error(response: httpx.Response, what: str, host: str) -> RegistryError:
    """`pull 127.0.0.1:5000/app:1: 404 Not Found: MANIFEST_UNKNOWN: manifest unknown`."""
    status = response.status_code
    body = _read_some(response)
    content_type = response.headers.get("content-type", "").split(";")[0].strip().lower()
    code, detail = "", ""
    html = body.lstrip()[:15].lower().startswith((b"<!doctype", b"<html"))
    if content_type == "text/html" or html:
        detail = "the server answered with an HTML page, not the registry API"
    else:
        try:
            doc = jsonread.loads(body, "error reply") if body else {}
        except InvalidArgument:
            doc = {}
        errors = doc.get("errors") if isinstance(doc, dict) else None
        if isinstance(errors, list) and errors and isinstance(errors[0], dict):
            code = str(errors[0].get("code") or "")
            detail = str(errors[0].get("message") or "")
        elif isinstance(doc, dict) and isinstance(doc.get("details"), str):
            detail = doc["details"]
    if not detail:
        # HEAD answers carry no body; say what the status means.
        detail = {401: "authentication required", 403: "access denied"}.get(status, "")
    text = f"{what}: {status} {response.reason_phrase or ''}".rstrip()
    if code:
        text += f": {code}"
    if detail:
        text += f": {detail}"
    hint = _HINTS.get(status, "the registry failed; try again later" if status >= 500 else "")
    return RegistryError(
        " ".join(text.split()), status=status, code=code, hint=hint.format(host=host)
    )


def transport_error(exc: Exception, what: str, host: str) -> RegistryError:
    """An httpx failure (any: connection, TLS, protocol, URL) as one located line."""
    reason = str(exc) or type(exc).__name__
    hint = ""
    if isinstance(exc, httpx.ConnectError):
        hint = f"check that {host} is reachable (and use --insecure for a plain-HTTP registry)"
    return RegistryError(f"{what}: cannot talk to {host}: {' '.join(reason.split())}", hint=hint)
