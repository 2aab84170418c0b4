"""Python distributions: `*.dist-info/METADATA` and `*.egg-info/PKG-INFO` (or a bare
`*.egg-info` file) under any `lib*/python*/site-packages` or `dist-packages`, which
covers `/usr/lib/python3/dist-packages`, `/usr/local/lib/python3.X/site-packages` and
virtual environments. Read as the core metadata spec says: RFC 822 headers."""

from __future__ import annotations

import email.parser
import email.policy
import re

from bale.exporters.sbom.licenses import to_spdx
from bale.exporters.sbom.package import Package, purl

METADATA = re.compile(
    r"(?:^|/)lib[^/]*/python[^/]*/(?:site|dist)-packages/"
    r"[^/]+\.(?:dist-info/METADATA|egg-info/PKG-INFO|egg-info)$"
)
# Trove classifiers that name exactly one SPDX licence.
_CLASSIFIERS = {
    "MIT License": "MIT",
    "MIT No Attribution License (MIT-0)": "MIT-0",
    "ISC License (ISCL)": "ISC",
    "Apache Software License 2.0": "Apache-2.0",
    "Mozilla Public License 2.0 (MPL 2.0)": "MPL-2.0",
    "Python Software Foundation License": "PSF-2.0",
    "The Unlicense (Unlicense)": "Unlicense",
    "zlib/libpng License": "Zlib",
    "Boost Software License 1.0 (BSL-1.0)": "BSL-1.0",
    "Eclipse Public License 2.0 (EPL-2.0)": "EPL-2.0",
    "European Union Public Licence 1.2 (EUPL 1.2)": "EUPL-1.2",
    "CC0 1.0 Universal (CC0 1.0) Public Domain Dedication": "CC0-1.0",
    "GNU General Public License v2 (GPLv2)": "GPL-2.0-only",
    "GNU General Public License v2 or later (GPLv2+)": "GPL-2.0-or-later",
    "GNU General Public License v3 (GPLv3)": "GPL-3.0-only",
    "GNU General Public License v3 or later (GPLv3+)": "GPL-3.0-or-later",
    "GNU Lesser General Public License v2 (LGPLv2)": "LGPL-2.0-only",
    "GNU Lesser General Public License v2 or later (LGPLv2+)": "LGPL-2.0-or-later",
    "GNU Lesser General Public License v3 (LGPLv3)": "LGPL-3.0-only",
    "GNU Lesser General Public License v3 or later (LGPLv3+)": "LGPL-3.0-or-later",
    "GNU Affero General Public License v3": "AGPL-3.0-only",
    "GNU Affero General Public License v3 or later (AGPLv3+)": "AGPL-3.0-or-later",
}
_MAX_LICENSE_TEXT = 200


def _licenses(headers: email.message.Message) -> tuple[str, ...]:
    expression = str(headers.get("License-Expression") or "").strip()
    if expression:
        return (expression,)
    text = str(headers.get("License") or "").strip()
    if text and to_spdx(text):
        return (text,)
    mapped = []
    for classifier in headers.get_all("Classifier") or []:
        parts = [p.strip() for p in str(classifier).split("::")]
        if parts[0] == "License" and parts[-1] in _CLASSIFIERS:
            mapped.append(_CLASSIFIERS[parts[-1]])
    if mapped:
        return tuple(dict.fromkeys(mapped))
    # A short free-text statement is kept (as a LicenseRef); a whole licence text is not.
    if text and "\n" not in text and len(text) <= _MAX_LICENSE_TEXT and text != "UNKNOWN":
        return (text,)
    return ()


def parse_metadata(data: bytes, *, location: str) -> Package | None:
    """The distribution a METADATA / PKG-INFO file describes, or None without a name
    and version."""
    parser = email.parser.BytesHeaderParser(policy=email.policy.compat32)
    headers = parser.parsebytes(data)
    name = str(headers.get("Name") or "").strip()
    version = str(headers.get("Version") or "").strip()
    if not name or not version:
        return None
    return Package(
        name=name,
        version=version,
        kind="python",
        purl=purl("pypi", name, version),
        licenses=_licenses(headers),
        location=location,
        source="python package metadata",
    )
