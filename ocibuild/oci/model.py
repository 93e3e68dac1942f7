"""Descriptors, manifests, indexes and image configs as frozen values, with their JSON forms.

`to_json()` gives the dict that goes over the wire; `from_json()` reads one back, keeping
what it does not model out of the way rather than failing on it.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from ocibuild.limits import BLOB_SIZE
from ocibuild.oci.digest import Digest, sha256_digest
from ocibuild.oci.json import canonical_json
from ocibuild.oci.mediatypes import MediaType


def _drop_empty(d: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in d.items() if v not in (None, "", [], {})}


@dataclass(frozen=True)
class Platform:
    architecture: str = "amd64"
    os: str = "linux"
    variant: str = ""

    def to_json(self) -> dict[str, Any]:
        return _drop_empty(
            {"architecture": self.architecture, "os": self.os, "variant": self.variant}
        )

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Platform:
        return cls(
            json_string(d, "architecture", "platform", ""),
            json_string(d, "os", "platform", ""),
            json_string(d, "variant", "platform", ""),
        )

    def __str__(self) -> str:
        return "/".join(p for p in (self.os, self.architecture, self.variant) if p)

    @classmethod
    def parse(cls, text: str) -> Platform:
        """`os/arch[/variant]` with the values the OCI image index allows (Go's GOOS and
        GOARCH); anything else raises ValueError."""
        parts = text.split("/")
        if not 2 <= len(parts) <= 3 or not all(parts):
            raise ValueError(f"platform {text!r} is not os/arch or os/arch/variant")
        os_, arch, variant = (*parts, "")[:3]
        if os_ not in KNOWN_OS:
            raise ValueError(
                f"platform {text!r}: unknown os {os_!r} (like {', '.join(sorted(KNOWN_OS)[:6])}, ...)"
            )
        if arch not in KNOWN_ARCH:
            raise ValueError(
                f"platform {text!r}: unknown architecture {arch!r} (one of {', '.join(sorted(KNOWN_ARCH))})"
            )
        if variant and variant not in KNOWN_VARIANTS.get(arch, ()):
            known = ", ".join(KNOWN_VARIANTS.get(arch, ())) or "none"
            raise ValueError(
                f"platform {text!r}: unknown variant {variant!r} of {arch} (known: {known})"
            )
        return cls(arch, os_, variant)


# what `uname -m` says -> the OCI image index's architecture (and variant)
_MACHINES = {
    "x86_64": "amd64",
    "aarch64": "arm64",
    "ppc64le": "ppc64le",
    "s390x": "s390x",
    "riscv64": "riscv64",
    "i686": "386",
    "armv7l": "arm/v7",
}


def host_platform() -> str:
    """This machine's platform, `linux/amd64` on x86_64: what export and the HPC targets take
    of a multi-platform image unless told."""
    import platform

    return f"linux/{_MACHINES.get(platform.machine(), platform.machine())}"


# the values of the OCI image index's platform (image-spec image-index.md: GOOS and GOARCH)
KNOWN_OS = frozenset(
    [
        "aix",
        "android",
        "darwin",
        "dragonfly",
        "freebsd",
        "illumos",
        "ios",
        "js",
        "linux",
        "netbsd",
        "openbsd",
        "plan9",
        "solaris",
        "wasip1",
        "windows",
    ]
)
KNOWN_ARCH = frozenset(
    [
        "386",
        "amd64",
        "arm",
        "arm64",
        "loong64",
        "mips",
        "mips64",
        "mips64le",
        "mipsle",
        "ppc64",
        "ppc64le",
        "riscv64",
        "s390x",
        "wasm",
    ]
)
KNOWN_VARIANTS = {
    "arm": ("v5", "v6", "v7", "v8"),
    "arm64": (
        "v8",
        "v8.1",
        "v8.2",
        "v8.3",
        "v8.4",
        "v8.5",
        "v8.6",
        "v8.7",
        "v8.8",
        "v8.9",
        "v9",
        "v9.1",
        "v9.2",
        "v9.3",
        "v9.4",
        "v9.5",
    ),
    "amd64": ("v1", "v2", "v3", "v4"),
}


_REQUIRED: Any = object()


def json_object(value: Any, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ValueError(f"{what} is not a JSON object (got {type(value).__name__})")
    return value


def json_list(value: Any, what: str) -> list[Any]:
    if not isinstance(value, list):
        raise ValueError(f"{what} is not a JSON list (got {type(value).__name__})")
    return value


def json_string(d: dict[str, Any], key: str, what: str, default: Any = _REQUIRED) -> str:
    value = d.get(key, default)
    if value is _REQUIRED:
        raise ValueError(f"{what} has no {key}")
    if not isinstance(value, str):
        raise ValueError(f"{what}: {key} {value!r} is not a string")
    return value


def json_strings(value: Any, what: str) -> dict[str, str]:
    """A string -> string map (annotations, labels); null or absent is empty."""
    if value is None:
        return {}
    value = json_object(value, what)
    if not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        raise ValueError(f"{what} must map strings to strings")
    return dict(value)


@dataclass(frozen=True)
class Descriptor:
    media_type: str
    digest: Digest
    size: int
    annotations: dict[str, str] = field(default_factory=dict)
    platform: Platform | None = None
    artifact_type: str = ""  # what an artifact manifest holds (an SBOM, a signature)

    def to_json(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "mediaType": self.media_type,
            "digest": str(self.digest),
            "size": self.size,
        }
        if self.artifact_type:
            d["artifactType"] = self.artifact_type
        if self.annotations:
            d["annotations"] = dict(self.annotations)
        if self.platform:
            d["platform"] = self.platform.to_json()
        return d

    @classmethod
    def from_json(cls, d: dict[str, Any], what: str = "descriptor") -> Descriptor:
        d = json_object(d, what)
        size = d.get("size")
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            raise ValueError(f"{what}: size {size!r} is not a byte count")
        BLOB_SIZE.check(size, f"{what}: size")  # believed only up to a budget
        platform = d.get("platform")
        if platform is not None:
            platform = json_object(platform, f"{what}: platform")
        return cls(
            media_type=json_string(d, "mediaType", what),
            digest=Digest(json_string(d, "digest", what)),
            size=size,
            annotations=json_strings(d.get("annotations"), f"{what}: annotations"),
            platform=Platform.from_json(platform) if platform else None,
            artifact_type=json_string(d, "artifactType", what, ""),
        )

    @classmethod
    def of(cls, media_type: str, data: bytes, **kw: Any) -> Descriptor:
        return cls(media_type, sha256_digest(data), len(data), **kw)

    def with_annotations(self, **annotations: str) -> Descriptor:
        return replace(self, annotations={**self.annotations, **annotations})


@dataclass(frozen=True)
class Manifest:
    config: Descriptor
    layers: tuple[Descriptor, ...]
    media_type: str = MediaType.OCI_MANIFEST
    annotations: dict[str, str] = field(default_factory=dict)
    # OCI 1.1 artifacts: what the manifest holds, and the image it is about (an SBOM's)
    artifact_type: str = ""
    subject: Descriptor | None = None

    def to_json(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "schemaVersion": 2,
            "mediaType": self.media_type,
            "config": self.config.to_json(),
            "layers": [layer.to_json() for layer in self.layers],
        }
        if self.artifact_type:
            d["artifactType"] = self.artifact_type
        if self.subject is not None:
            d["subject"] = self.subject.to_json()
        if self.annotations:
            d["annotations"] = dict(self.annotations)
        return d

    def to_bytes(self) -> bytes:
        return canonical_json(self.to_json())

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Manifest:
        d = json_object(d, "manifest")
        if "config" not in d:
            raise ValueError("manifest has no config")
        return cls(
            config=Descriptor.from_json(d["config"], "config"),
            layers=tuple(
                Descriptor.from_json(x, f"layer {i}")
                for i, x in enumerate(json_list(d.get("layers", []), "layers"))
            ),
            media_type=json_string(d, "mediaType", "manifest", MediaType.OCI_MANIFEST),
            annotations=json_strings(d.get("annotations"), "manifest: annotations"),
            artifact_type=json_string(d, "artifactType", "manifest", ""),
            subject=Descriptor.from_json(d["subject"], "subject") if d.get("subject") else None,
        )


@dataclass(frozen=True)
class Index:
    manifests: tuple[Descriptor, ...]
    media_type: str = MediaType.OCI_INDEX
    annotations: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "schemaVersion": 2,
            "mediaType": self.media_type,
            "manifests": [m.to_json() for m in self.manifests],
        }
        if self.annotations:
            d["annotations"] = dict(self.annotations)
        return d

    def to_bytes(self) -> bytes:
        return canonical_json(self.to_json())

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Index:
        d = json_object(d, "index")
        return cls(
            manifests=tuple(
                Descriptor.from_json(x, f"manifest {i}")
                for i, x in enumerate(json_list(d.get("manifests", []), "manifests"))
            ),
            media_type=json_string(d, "mediaType", "index", MediaType.OCI_INDEX),
            annotations=json_strings(d.get("annotations"), "index: annotations"),
        )


@dataclass(frozen=True)
class History:
    created: str = ""
    created_by: str = ""
    comment: str = ""
    empty_layer: bool = False

    def to_json(self) -> dict[str, Any]:
        d = _drop_empty(
            {"created": self.created, "created_by": self.created_by, "comment": self.comment}
        )
        if self.empty_layer:
            d["empty_layer"] = True
        return d

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> History:
        return cls(
            d.get("created", ""),
            d.get("created_by", ""),
            d.get("comment", ""),
            bool(d.get("empty_layer", False)),
        )


@dataclass(frozen=True)
class RuntimeConfig:
    """The `config` section of an image config: what a runtime uses to start a container."""

    env: tuple[str, ...] = ()
    cmd: tuple[str, ...] | None = None
    entrypoint: tuple[str, ...] | None = None
    working_dir: str = ""
    user: str = ""
    labels: dict[str, str] = field(default_factory=dict)
    exposed_ports: tuple[str, ...] = ()
    volumes: tuple[str, ...] = ()
    stop_signal: str = ""

    def env_dict(self) -> dict[str, str]:
        return dict(item.partition("=")[::2] for item in self.env)

    def with_env(self, updates: dict[str, str]) -> RuntimeConfig:
        merged = self.env_dict()
        merged.update(updates)
        return replace(self, env=tuple(f"{k}={v}" for k, v in merged.items()))

    def to_json(self) -> dict[str, Any]:
        d: dict[str, Any] = {}
        if self.env:
            d["Env"] = list(self.env)
        if self.cmd is not None:
            d["Cmd"] = list(self.cmd)
        if self.entrypoint is not None:
            d["Entrypoint"] = list(self.entrypoint)
        if self.working_dir:
            d["WorkingDir"] = self.working_dir
        if self.user:
            d["User"] = self.user
        if self.labels:
            d["Labels"] = dict(self.labels)
        if self.exposed_ports:
            d["ExposedPorts"] = {p: {} for p in self.exposed_ports}
        if self.volumes:
            d["Volumes"] = {v: {} for v in self.volumes}
        if self.stop_signal:
            d["StopSignal"] = self.stop_signal
        return d

    @classmethod
    def from_json(cls, d: dict[str, Any] | None) -> RuntimeConfig:
        d = d or {}
        cmd = d.get("Cmd")
        entrypoint = d.get("Entrypoint")
        return cls(
            env=tuple(d.get("Env") or ()),
            cmd=tuple(cmd) if cmd is not None else None,
            entrypoint=tuple(entrypoint) if entrypoint is not None else None,
            working_dir=d.get("WorkingDir") or "",
            user=d.get("User") or "",
            labels=dict(d.get("Labels") or {}),
            exposed_ports=tuple(sorted(d.get("ExposedPorts") or {})),
            volumes=tuple(sorted(d.get("Volumes") or {})),
            stop_signal=d.get("StopSignal") or "",
        )


@dataclass(frozen=True)
class ImageConfig:
    """The image configuration blob: platform, runtime config, layer diff_ids and history."""

    architecture: str = "amd64"
    os: str = "linux"
    created: str = ""
    author: str = ""
    variant: str = ""
    config: RuntimeConfig = field(default_factory=RuntimeConfig)
    diff_ids: tuple[Digest, ...] = ()
    history: tuple[History, ...] = ()

    def to_json(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "architecture": self.architecture,
            "os": self.os,
            "config": self.config.to_json(),
            "rootfs": {"type": "layers", "diff_ids": [str(x) for x in self.diff_ids]},
            "history": [h.to_json() for h in self.history],
        }
        if self.created:
            d["created"] = self.created
        if self.author:
            d["author"] = self.author
        if self.variant:
            d["variant"] = self.variant
        return d

    def to_bytes(self) -> bytes:
        return canonical_json(self.to_json())

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> ImageConfig:
        rootfs = d.get("rootfs") or {}
        return cls(
            architecture=d.get("architecture", ""),
            os=d.get("os", ""),
            created=d.get("created", ""),
            author=d.get("author", ""),
            variant=d.get("variant", ""),
            config=RuntimeConfig.from_json(d.get("config")),
            diff_ids=tuple(Digest(x) for x in rootfs.get("diff_ids") or ()),
            history=tuple(History.from_json(h) for h in d.get("history") or ()),
        )

    @property
    def platform(self) -> Platform:
        return Platform(self.architecture, self.os, self.variant)
