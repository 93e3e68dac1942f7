"""Licenses as sources declare them, as SPDX license identifiers where one is meant: the SPDX
ids common in packages, and Debian's copyright-format short names for them; any other name
stays the source's own words (an SPDX `LicenseRef-`, a CycloneDX license `name`)."""

from __future__ import annotations

import re

SPDX_IDS = frozenset(
    [
        "0BSD",
        "AFL-2.1",
        "AGPL-3.0-only",
        "AGPL-3.0-or-later",
        "Apache-1.1",
        "Apache-2.0",
        "Artistic-1.0",
        "Artistic-1.0-Perl",
        "Artistic-2.0",
        "BSD-1-Clause",
        "BSD-2-Clause",
        "BSD-3-Clause",
        "BSD-4-Clause",
        "BSL-1.0",
        "CC-BY-3.0",
        "CC-BY-4.0",
        "CC-BY-SA-3.0",
        "CC-BY-SA-4.0",
        "CC0-1.0",
        "CDDL-1.0",
        "curl",
        "ECL-2.0",
        "EPL-1.0",
        "EPL-2.0",
        "FTL",
        "GFDL-1.2-only",
        "GFDL-1.2-or-later",
        "GFDL-1.3-only",
        "GFDL-1.3-or-later",
        "GPL-1.0-only",
        "GPL-1.0-or-later",
        "GPL-2.0-only",
        "GPL-2.0-or-later",
        "GPL-3.0-only",
        "GPL-3.0-or-later",
        "ICU",
        "IJG",
        "ISC",
        "LGPL-2.0-only",
        "LGPL-2.0-or-later",
        "LGPL-2.1-only",
        "LGPL-2.1-or-later",
        "LGPL-3.0-only",
        "LGPL-3.0-or-later",
        "Libpng",
        "libtiff",
        "MIT",
        "MIT-0",
        "MPL-1.1",
        "MPL-2.0",
        "NCSA",
        "OFL-1.1",
        "OpenSSL",
        "PHP-3.01",
        "PostgreSQL",
        "PSF-2.0",
        "Python-2.0",
        "Ruby",
        "SSPL-1.0",
        "Unicode-DFS-2016",
        "Unlicense",
        "UPL-1.0",
        "Vim",
        "W3C",
        "WTFPL",
        "X11",
        "Zlib",
        "ZPL-2.1",
    ]
)
# Debian's copyright-format short names (DEP-5) that name an SPDX license
DEBIAN_NAMES = {
    "expat": "MIT",
    "gpl-1": "GPL-1.0-only",
    "gpl-1+": "GPL-1.0-or-later",
    "gpl-2": "GPL-2.0-only",
    "gpl-2+": "GPL-2.0-or-later",
    "gpl-3": "GPL-3.0-only",
    "gpl-3+": "GPL-3.0-or-later",
    "lgpl-2": "LGPL-2.0-only",
    "lgpl-2+": "LGPL-2.0-or-later",
    "lgpl-2.1": "LGPL-2.1-only",
    "lgpl-2.1+": "LGPL-2.1-or-later",
    "lgpl-3": "LGPL-3.0-only",
    "lgpl-3+": "LGPL-3.0-or-later",
    "bsd-2-clause": "BSD-2-Clause",
    "bsd-3-clause": "BSD-3-Clause",
    "bsd-4-clause": "BSD-4-Clause",
    "apache-2": "Apache-2.0",
    "zlib": "Zlib",
    "isc": "ISC",
    "mpl-2": "MPL-2.0",
    "artistic": "Artistic-1.0",
    "cc0": "CC0-1.0",
}
_BY_LOWER = {i.lower(): i for i in SPDX_IDS}


def spdx_id(declared: str) -> str | None:
    """The SPDX id a declared license name means, or None."""
    name = declared.strip()
    return _BY_LOWER.get(name.lower()) or DEBIAN_NAMES.get(name.lower())


def license_ref(declared: str) -> str:
    """An SPDX `LicenseRef-` for a license without an SPDX id (its name, made an idstring)."""
    return "LicenseRef-" + (
        re.sub(r"[^A-Za-z0-9.-]+", "-", declared.strip()).strip("-") or "unnamed"
    )
