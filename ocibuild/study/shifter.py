"""How a Shifter target gets its image: two routes (`ocibuild bench --via pull|import`).

- pull (the default): the image is in a registry in Docker v2 schema 2 form, and
  `shifterimg -v pull docker:IMAGE` has the image gateway fetch it; jobs say
  `#SBATCH --image=docker:IMAGE`. The gateway (NERSC's `dockerv2.py`) asks for the manifest with
  no Accept header and reads schema 1 only, which a registry serves for a Docker manifest and
  not for an OCI one: an image in the ocibuild store is pushed first, in Docker form.
- import: the image is exported from the store as a squashfs (root-owned, no xattrs) to a path
  the gateway's user reads, and posted to the gateway's `/api/doimport/SYSTEM/custom/NAME:TAG/`
  with a munge credential, as Shifter's import documentation shows with curl; jobs say
  `#SBATCH --image=custom:NAME:TAG`. The gateway neither pulls nor converts anything.
"""

from __future__ import annotations

import json
import re
import shlex
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from ocibuild.errors import BenchError, NetworkError
from ocibuild.jsonread import read_json
from ocibuild.net.policy import Deadlines
from ocibuild.net.session import error_summary, new_session, send
from ocibuild.net.tls import host_tls
from ocibuild.oci.reference import parse_reference
from ocibuild.study.targets import ShifterOptions, Target, expand_path

ROUTES = ("pull", "import")
IMPORT_TIMEOUT = 600.0
POLL_INTERVAL = 1.0
_PLAIN = re.compile(r"[\w$/.{}:@+=-]+")


@dataclass(frozen=True)
class Gateway:
    url: str  # without a trailing slash
    system: str

    def api(self, call: str, name: str) -> str:
        return f"{self.url}/api/{call}/{self.system}/custom/{name}/"


@dataclass(frozen=True)
class ShifterRoute:
    via: str
    ref: str
    image: str  # as job scripts name it: docker:REF or custom:NAME:TAG
    push: bool = False  # pull route: the image is in the store, push it (Docker form) first
    squashfs: Path | None = None  # import route: where the export goes
    gateway: Gateway | None = None


def custom_name(ref: str) -> str:
    """NAME:TAG of an imported image: the last part of the repository, and the tag (or the
    digest's first 12 hex digits, or latest)."""
    parsed = parse_reference(ref)
    tag = parsed.tag or (parsed.digest.hex[:12] if parsed.digest else "latest")
    return f"{parsed.repository.rsplit('/', 1)[-1]}:{tag}"


def read_udiroot(path: Path) -> dict[str, str]:
    """The KEY=VALUE settings of Shifter's udiRoot.conf ({} if there is none)."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        return {}
    except OSError as e:
        raise BenchError(f"cannot read {path}: {e.strerror}") from None
    settings = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep and not key.lstrip().startswith("#"):
            settings[key.strip()] = value.strip()
    return settings


def find_gateway(target: Target, required: bool = True) -> Gateway:
    """The gateway of the target's `shifter:` section, else of the site's udiRoot.conf (its
    first `imageGateway`); the system likewise, else the target's name."""
    options = target.shifter or ShifterOptions()
    site = read_udiroot(Path(options.udiroot_conf))
    urls = (options.gateway or site.get("imageGateway", "")).split()
    system = options.system or site.get("system", "") or target.name
    if urls:
        return Gateway(urls[0].rstrip("/"), system)
    if required:
        raise BenchError(
            f"{target.file or target.name}: --via import needs the image gateway's URL: "
            f"set shifter: {{gateway: http://HOST:5000}} (none in {options.udiroot_conf})"
        )
    return Gateway(f"<imageGateway of {options.udiroot_conf}>", system)


def plan_route(
    target: Target,
    ref: str,
    via: str,
    in_store: bool,
    run_parent: Path,
    required: bool = True,
) -> ShifterRoute:
    """The route of `ref` to a Shifter target; `run_parent` holds the run directories (the
    default place of exported images: RUN_PARENT/images)."""
    if via == "pull":
        return ShifterRoute(via, ref, f"docker:{ref}", push=in_store)
    if via != "import":
        raise BenchError(f"unknown route --via {via} (one of {', '.join(ROUTES)})")
    if not in_store:
        raise BenchError(
            f"--via import exports the image from the ocibuild store, which does not hold {ref} "
            "(build it with `ocibuild recipe`, or `ocibuild pull` it)"
        )
    name = custom_name(ref)
    options = target.shifter or ShifterOptions()
    images = (
        expand_path(target, "shifter.images", options.images, required)
        if options.images
        else run_parent / "images"
    )
    return ShifterRoute(
        via,
        ref,
        f"custom:{name}",
        squashfs=images / f"{name.replace(':', '-')}.squashfs",
        gateway=find_gateway(target, required),
    )


def export_argv(store_root: Path, ref: str, squashfs: Path) -> list[str]:
    """`ocibuild export` of the squashfs the gateway imports, as the CLI runs it."""
    return [
        sys.executable,
        "-m",
        "ocibuild",
        "--store",
        str(store_root),
        "export",
        ref,
        "--format",
        "squashfs",
        "--all-root",
        "-o",
        str(squashfs),
    ]


def import_body(route: ShifterRoute) -> dict[str, str]:
    return {"filepath": str(route.squashfs), "format": "squashfs"}


def route_commands(
    target: Target, route: ShifterRoute, store_root: Path | None, insecure: bool = False
) -> list[str]:
    """What the route does, as shell lines (for --dry-run and the run's metadata)."""
    if route.via == "pull":
        push = ["ocibuild", "push", route.ref, "--format", "docker"]
        shifterimg = shlex.quote(target.runtime_command[0] + "img")
        return [
            *([shlex.join(push + (["--insecure"] if insecure else []))] if route.push else []),
            f"{shifterimg} -v pull {shlex.quote(route.image)}",
        ]
    assert route.squashfs and route.gateway
    export = export_argv(store_root or Path("STORE"), route.ref, route.squashfs)
    munge = shlex.join((target.shifter or ShifterOptions()).munge)
    name = route.image.removeprefix("custom:")
    # the path as scripts write paths: $VARIABLES left to the shell
    output = str(route.squashfs) if _PLAIN.fullmatch(str(route.squashfs)) else None
    return [
        shlex.join(["ocibuild", *export[3:-1]]) + f" {output or shlex.quote(export[-1])}",
        f"curl -sS -d {shlex.quote(json.dumps(import_body(route)))} "
        f'-H "authentication: $({munge})" {shlex.quote(route.gateway.api("doimport", name))}',
    ]


def request_import(
    route: ShifterRoute,
    credential: str,
    timeout: float = IMPORT_TIMEOUT,
    poll: float = POLL_INTERVAL,
) -> dict[str, Any]:
    """Post the import to the gateway, then look the image up until the gateway says READY;
    returns the gateway's record of it (id, status, ENV, ...)."""
    assert route.gateway
    name = route.image.removeprefix("custom:")
    url = route.gateway.api("doimport", name)
    record = _gateway_call(
        "POST",
        url,
        {"authentication": credential, "Content-Type": "application/json"},
        json.dumps(import_body(route)).encode(),
    )
    deadline = time.monotonic() + timeout
    while record.get("status") != "READY":
        if record.get("status") in ("FAILURE", "FAILED"):
            message = record.get("status_message") or "no reason given"
            raise BenchError(f"{url}: the gateway failed to import {route.squashfs}: {message}")
        if time.monotonic() > deadline:
            raise BenchError(
                f"{url}: {name} not READY after {timeout:.0f}s (status {record.get('status')})"
            )
        time.sleep(poll)
        record = _gateway_call(
            "GET", route.gateway.api("lookup", name), {"authentication": credential}
        )
    return record


def _gateway_call(
    method: str, url: str, headers: dict[str, str], data: bytes | None = None
) -> dict[str, Any]:
    netloc = urlsplit(url).netloc
    try:
        with new_session() as session:
            response = send(
                session,
                method,
                url,
                tls=host_tls(netloc),
                deadlines=Deadlines(),
                headers=headers,
                data=data,
            )
    except NetworkError as e:
        raise BenchError(f"cannot reach Shifter's image gateway at {url}: {e}") from None
    with response:
        if response.status_code != 200:
            raise BenchError(
                f"{method} {url}: the gateway answered HTTP {response.status_code}"
                f"{error_summary(response)}"
            )
        try:
            record = read_json(response.content, f"{method} {url}: the gateway's answer")
        except ValueError as e:
            raise BenchError(str(e)) from None
    if not isinstance(record, dict):
        raise BenchError(f"{method} {url}: the gateway's answer is not a record")
    return record
