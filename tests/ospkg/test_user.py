"""The user source: account files merged with the base's, the home, the image's user; and an
image that podman runs as that user."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from ocibuild.builder import BuildSettings, build_recipe
from ocibuild.errors import SourceError
from ocibuild.oci import RuntimeConfig
from ocibuild.sources import user
from ocibuild.sources.session import ImageFiles, LayerContext
from ocibuild.sources.specs import UserSpec
from ocibuild.store import Store
from ocibuild.store.export import export_image
from tests.ospkg.helpers import write_plan
from tests.podman import Podman

BASE = {
    "etc/passwd": b"root:x:0:0:root:/root:/bin/bash\nnobody:x:65534:65534::/nonexistent:/usr/sbin/nologin\n",
    "etc/group": b"root:x:0:\nshadow:x:42:\nwheel:x:10:root\nnogroup:x:65534:\n",
    "etc/shadow": b"root:*:19000:0:99999:7:::\nnobody:*:19000:0:99999:7:::\n",
    "etc/skel/.bashrc": b"# bashrc\n",
}


class _EmptyFS:
    def read(self, path: str) -> bytes | None:
        return None

    def collect(self, match: Callable[[str], bool]) -> dict[str, bytes]:
        return {}


EMPTY_FS = ImageFiles(_EmptyFS(), _EmptyFS())


def test_accounts_are_merged_with_the_base(make_ctx: Callable[..., LayerContext]) -> None:
    spec = UserSpec(name="hep", uid=1000, groups=["wheel"], shell="/bin/bash")
    (plan,) = user.plan(spec, make_ctx(BASE))
    assert plan.runtime_config is not None
    assert plan.runtime_config(RuntimeConfig(user="root"), EMPTY_FS).user == "1000:1000"
    _, members = write_plan(plan)
    assert members["etc/passwd"][1].decode().splitlines() == [
        "root:x:0:0:root:/root:/bin/bash",
        "nobody:x:65534:65534::/nonexistent:/usr/sbin/nologin",
        "hep:x:1000:1000::/home/hep:/bin/bash",
    ]
    assert members["etc/group"][1].decode().splitlines()[-2:] == ["nogroup:x:65534:", "hep:x:1000:"]
    assert "wheel:x:10:root,hep" in members["etc/group"][1].decode()
    shadow, data = members["etc/shadow"]
    assert data.decode().splitlines()[-1] == "hep:!:16801:0:99999:7:::"  # locked; day of the epoch
    assert (shadow.mode, shadow.gid) == (0o640, 42)
    home = members["home/hep"][0]
    assert home.isdir() and (home.uid, home.gid) == (1000, 1000)
    bashrc = members["home/hep/.bashrc"][0]
    assert (bashrc.uid, bashrc.gid, members["home/hep/.bashrc"][1]) == (1000, 1000, b"# bashrc\n")


def test_without_account_files_debian_masters_or_root_are_the_base(
    make_ctx: Callable[..., LayerContext],
) -> None:
    masters = {
        "usr/share/base-passwd/passwd.master": b"root:*:0:0:root:/root:/bin/sh\n",
        "usr/share/base-passwd/group.master": b"root:*:0:\n",
    }
    (plan,) = user.plan(UserSpec(name="hep", set_user=False, gid=2000), make_ctx(masters))
    assert plan.runtime_config is None
    _, members = write_plan(plan)
    assert (
        members["etc/passwd"][1]
        == b"root:*:0:0:root:/root:/bin/sh\nhep:x:1000:2000::/home/hep:/bin/sh\n"
    )
    (plan,) = user.plan(UserSpec(name="hep"), make_ctx({}))
    _, members = write_plan(plan)
    assert members["etc/group"][1] == b"root:x:0:\nhep:x:1000:\n"
    assert members["etc/shadow"][0].mode == 0o600


def test_clear_errors(make_ctx: Callable[..., LayerContext]) -> None:
    with pytest.raises(
        SourceError, match=r"recipe.yaml:3:7: uid 65534 already belongs to user nobody"
    ):
        user.plan(UserSpec(name="hep", uid=65534), make_ctx(BASE))
    with pytest.raises(
        SourceError, match=r"group 'wheeel' does not exist in the image \(did you mean 'wheel'\?\)"
    ):
        user.plan(UserSpec(name="hep", groups=["wheeel"]), make_ctx(BASE))
    with pytest.raises(SourceError, match="user root already exists with uid 0"):
        user.plan(UserSpec(name="root", uid=5), make_ctx(BASE))


def test_recipe_values_are_checked(tmp_path: Path) -> None:
    from ocibuild.errors import RecipeError
    from ocibuild.recipe import load_recipe

    recipe = tmp_path / "r.yaml"
    recipe.write_text("images:\n  - name: x/y:1\n    layers:\n      - user: {name: hep, uid: 0}\n")
    with pytest.raises(RecipeError, match=r"r.yaml:4:32: uid: 0 is not a non-root id"):
        load_recipe(recipe)
    recipe.write_text("images:\n  - name: x/y:1\n    layers:\n      - user: {name: Hep!}\n")
    with pytest.raises(RecipeError, match="not a valid user name"):
        load_recipe(recipe)


RECIPE = """\
images:
  - name: localhost/ocibuild-test/user:1
    layers:
      - files:
          - {{src: {busybox}, dest: /bin/busybox, mode: "0755"}}
          - {{content: "root:x:0:0:root:/root:/bin/sh\\n", dest: /etc/passwd}}
          - {{content: "root:x:0:\\n", dest: /etc/group}}
      - user: {{name: hep, uid: 1234, gid: 1300}}
    entrypoint: ["/bin/busybox"]
"""


def test_the_image_runs_as_the_user(tmp_path: Path, podman: Podman, busybox: Path) -> None:
    (tmp_path / "user.yaml").write_text(RECIPE.format(busybox=busybox))
    store = Store.open(tmp_path / "store")
    (built,) = build_recipe(
        tmp_path / "user.yaml", store, BuildSettings(cache_dir=tmp_path / "cache")
    )
    assert built.config.config.user == "1234:1300"
    export_image(store, built.ref, "docker-archive", tmp_path / "user.tar")
    podman("load", "-i", str(tmp_path / "user.tar"))
    assert podman.run(built.ref, "id").split() == [
        "uid=1234(hep)",
        "gid=1300(hep)",
        "groups=1300(hep)",
    ]
    assert podman.run(built.ref, "stat", "-c", "%u:%g %a", "/home/hep") == "1234:1300 755\n"
    assert (
        podman.run(built.ref, "sh", "-c", "echo $HOME; touch ~/x && echo writable")
        == "/home/hep\nwritable\n"
    )
    podman("rmi", built.ref)
