"""The SLSA v1 provenance of a built image, as an in-toto Statement v1: the image (subject),
the recipe file and its lock file by sha256 (what was built from), the base image, the build's
settings, SOURCE_DATE_EPOCH and the ocibuild version. No time of its own: the same build gives
the same statement."""

from __future__ import annotations

import json
from dataclasses import dataclass

STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
PREDICATE_TYPE = "https://slsa.dev/provenance/v1"
BUILD_TYPE = "urn:ocibuild:recipe:v1"
BUILDER_ID = "urn:ocibuild"


@dataclass(frozen=True)
class Input:
    """A file or image the build read, by name and sha256."""

    uri: str
    sha256: str


@dataclass(frozen=True)
class Build:
    image: str  # full reference
    digest: str  # of its manifest
    recipe: Input
    locks: tuple[Input, ...]
    base: Input | None  # a base image, by reference
    source_date_epoch: int
    version: str  # ocibuild's
    settings: tuple[tuple[str, str], ...]  # the choices that shaped it (format, compression)


def provenance_statement(build: Build) -> bytes:
    dependencies = [build.recipe, *build.locks, *([build.base] if build.base else [])]
    statement = {
        "_type": STATEMENT_TYPE,
        "subject": [
            {"name": build.image, "digest": {"sha256": build.digest.removeprefix("sha256:")}}
        ],
        "predicateType": PREDICATE_TYPE,
        "predicate": {
            "buildDefinition": {
                "buildType": BUILD_TYPE,
                "externalParameters": {
                    "recipe": build.recipe.uri,
                    "image": build.image,
                    "source_date_epoch": build.source_date_epoch,
                },
                "internalParameters": dict(build.settings),
                "resolvedDependencies": [
                    {"uri": d.uri, "digest": {"sha256": d.sha256}} for d in dependencies
                ],
            },
            "runDetails": {
                "builder": {"id": BUILDER_ID, "version": {"ocibuild": build.version}},
                "metadata": {"invocationId": f"{build.image}@{build.digest}"},
            },
        },
    }
    return json.dumps(statement, sort_keys=True, separators=(",", ":")).encode()
