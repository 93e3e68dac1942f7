"""The environment UPS's `setup` gives, computed from `.version` and `.table` files."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from ocibuild.errors import Origin, SourceError
from ocibuild.progress import Event, Message
from ocibuild.sources.setup import frozen_environment, setup_command
from ocibuild.sources.specs import SetupSpec
from ocibuild.ups.flavors import host_flavors, same_flavor
from ocibuild.ups.upserrors import SetupRefused

SLF6 = "Linux64bit+2.6-2.12"


class Files(dict[str, bytes]):
    """An image's files under /products, as `LowerFS` gives them."""

    def declare(
        self,
        product: str,
        version: str,
        table: str | None,
        flavor: str = SLF6,
        quals: str = "",
        extra_files: tuple[str, ...] = (),
    ) -> None:
        name = flavor + "_" + "_".join(q for q in quals.split(":") if q)
        table_file = f"  TABLE_FILE = {product}.table\n" if table is not None else ""
        self[f"products/{product}/{version}.version/{name}"] = (
            f"FILE = version\nPRODUCT = {product}\nVERSION = {version}\n\n"
            f'FLAVOR = {flavor}\nQUALIFIERS = "{quals}"\n  PROD_DIR = {product}/{version}\n'
            f"  UPS_DIR = ups\n{table_file}"
        ).encode()
        if table is not None:
            self[f"products/{product}/{version}/ups/{product}.table"] = table.encode()
        for path in extra_files:
            self[f"products/{product}/{version}/{path}"] = b"x"

    def chain(self, product: str, version: str, flavor: str = SLF6, quals: str = "") -> None:
        """`current.chain`, as `ups declare -c` writes it."""
        name = flavor + "_" + "_".join(q for q in quals.split(":") if q)
        self[f"products/{product}/current.chain/{name}"] = (
            f"FILE = chain\nPRODUCT = {product}\nCHAIN = current\n\nFLAVOR = {flavor}\n"
            f'VERSION = {version}\nQUALIFIERS = "{quals}"\n'
        ).encode()

    def dbconfig(self) -> None:
        self["products/.upsfiles/dbconfig"] = (
            b"FILE = DBCONFIG\nAUTHORIZED_NODES = *\nPROD_DIR_PREFIX = ${UPS_THIS_DB}\n"
        )

    def read(self, path: str) -> bytes | None:
        return self.get(path.lstrip("/"))

    def collect(self, match: Callable[[str], bool]) -> dict[str, bytes]:
        return {p: d for p, d in self.items() if match(p)}


class Messages(list[str]):
    def __call__(self, event: Event) -> None:
        if isinstance(event, Message):
            self.append(f"{event.level}: {event.message}")

    def warnings(self) -> list[str]:
        return [m for m in self if m.startswith("warning: ")]


def simple_table(product: str, body: str, flavor: str = "ANY", quals: str = "") -> str:
    return (
        f'File=Table\nProduct={product}\nGroup:\nFlavor={flavor}\nQualifiers="{quals}"\n'
        f"Common:\n  Action=setup\n{body}End:\n"
    )


def setup(
    files: Files,
    product: str,
    version: str = "",
    quals: str = "",
    env: dict[str, str] | None = None,
) -> tuple[dict[str, str], Messages]:
    messages = Messages()
    spec = SetupSpec(product, version, quals, origin=Origin("r.yaml", 7))
    result = frozen_environment(files, spec, messages, base_env=env or {"PATH": "/usr/bin:/bin"})
    return result.env, messages


@pytest.fixture
def chain() -> Files:
    """lar -> (larcore -> art, art -> tbb (current chain), gcc NULL-less)"""
    files = Files()
    files.dbconfig()
    files.declare(
        "ups",
        "v5_1_4",
        simple_table(
            "ups", "    setupEnv()\n    prodDir()\n    pathPrepend(PATH, ${UPS_PROD_DIR}/bin)\n"
        ),
    )
    files.chain("ups", "v5_1_4")
    files.declare(
        "gcc",
        "v4_9_3",
        simple_table(
            "gcc",
            "    prodDir()\n    setupEnv()\n"
            "    envSet(GCC_FQ_DIR, ${UPS_PROD_DIR}/${UPS_PROD_FLAVOR})\n"
            "    pathPrepend(PATH, ${GCC_FQ_DIR}/bin)\n"
            '    if ( test `uname` = "Darwin" )\n'
            "      envPrepend(DYLD_LIBRARY_PATH, ${GCC_FQ_DIR}/lib)\n"
            "    else()\n"
            "      envPrepend(LD_LIBRARY_PATH, ${GCC_FQ_DIR}/lib64)\n"
            '    endif ( test `uname` = "Darwin" )\n',
        ),
    )
    files.declare(
        "tbb",
        "v4_3_6",
        simple_table(
            "tbb",
            "    setupEnv()\n    prodDir()\n    envPrepend(LD_LIBRARY_PATH, ${TBB_DIR}/lib)\n",
            quals="e9",
        ),
        quals="e9",
    )
    files["products/tbb/current.chain/" + SLF6 + "_e9"] = (
        f'FILE = chain\nPRODUCT = tbb\nCHAIN = current\nFLAVOR = {SLF6}\nVERSION = v4_3_6\nQUALIFIERS = "e9"\n'
    ).encode()
    files.declare(
        "art",
        "v1_17_05",
        "File=Table\nProduct=art\nGroup:\n"
        "Flavor=ANY\nQualifiers=e9:prof\n  _fq = e9-prof\n"
        "  Action=ExtraSetup\n    setupRequired( gcc v4_9_3 )\n    setupRequired( tbb -q +e9 )\n"
        "Flavor=ANY\nQualifiers=e9:debug\n  _fq = e9-debug\n"
        "Common:\n  Action=setup\n    setupenv()\n    proddir()\n"
        "    envSet(ART_FQ_DIR, ${UPS_PROD_DIR}/${UPS_PROD_FLAVOR}-${_fq})\n"
        "    exeActionRequired(ExtraSetup)\n"
        "    envPrepend(LD_LIBRARY_PATH, ${ART_FQ_DIR}/lib)\n"
        "    pathPrepend(PATH, ${ART_FQ_DIR}/bin)\n"
        "    envSet(ART_QUALS, ${UPS_REQ_QUALIFIERS})\nEnd:\n",
        quals="e9:prof",
    )
    files.declare(
        "larcore",
        "v04_31_00",
        simple_table(
            "larcore",
            "    setupenv()\n    proddir()\n    setupRequired( art v1_17_05 -q ${UPS_REQ_QUALIFIERS} )\n"
            "    envSet(LARCORE_INC, ${LARCORE_DIR}/include)\n"
            "    pathPrepend(FHICL_FILE_PATH, ${LARCORE_DIR}/fcl)\n"
            "    pathPrepend(FHICL_FILE_PATH, .)\n"
            "    pathAppend(FHICL_FILE_PATH, ${LARCORE_DIR}/fcl)\n",
            quals="e9:prof",
        ),
        quals="e9:prof",
    )
    files.declare(
        "lar",
        "v04_31_00",
        simple_table(
            "lar",
            "    setupEnv()\n    prodDir()\n"
            "    setupRequired( larcore v04_31_00 -q +e9:+prof )\n"
            "    setupRequired( art v1_17_05 -q +e9:+prof )\n"
            "    envSetIfNotSet(EXPERIMENT, uboone)\n"
            "    envSetIfNotSet(LANG, C)\n"
            "    envAppend(LD_LIBRARY_PATH, ${LAR_DIR}/lib)\n"
            "    envRemove(LD_LIBRARY_PATH, /products/tbb/v4_3_6/lib)\n"
            "    envUnset(GONE)\n"
            "    pathPrepend(PATH, ${LAR_DIR}/bin)\n",
            quals="e9:prof",
        ),
        quals="e9:prof",
    )
    return files


def test_chain_environment(chain: Files) -> None:
    env, messages = setup(
        chain,
        "lar",
        "v04_31_00",
        "e9:prof",
        {"PATH": "/usr/bin:/bin", "GONE": "x", "LANG": "en_US"},
    )
    gcc = f"/products/gcc/v4_9_3/{SLF6}"
    art = f"/products/art/v1_17_05/{SLF6}-e9-prof"
    assert env == {
        "PATH": f"/products/lar/v04_31_00/bin:{art}/bin:{gcc}/bin:/products/ups/v5_1_4/bin:/usr/bin:/bin",
        "LD_LIBRARY_PATH": f"{art}/lib:{gcc}/lib64:/products/lar/v04_31_00/lib",
        "PRODUCTS": "/products",
        "UPS_SHELL": "sh",
        "LANG": "en_US",
        "EXPERIMENT": "uboone",
        "SETUP_UPS": f"ups v5_1_4 -f {SLF6} -z /products",
        "UPS_DIR": "/products/ups/v5_1_4",
        "SETUP_LAR": f"lar v04_31_00 -f {SLF6} -z /products -q e9:prof",
        "LAR_DIR": "/products/lar/v04_31_00",
        "SETUP_LARCORE": f"larcore v04_31_00 -f {SLF6} -z /products -q e9:prof",
        "LARCORE_DIR": "/products/larcore/v04_31_00",
        "LARCORE_INC": "/products/larcore/v04_31_00/include",
        # pathPrepend/pathAppend do not drop duplicates (UPS writes envPrepend's sh for them)
        "FHICL_FILE_PATH": ".:/products/larcore/v04_31_00/fcl:/products/larcore/v04_31_00/fcl",
        "SETUP_ART": f"art v1_17_05 -f {SLF6} -z /products -q e9:prof",
        "ART_DIR": "/products/art/v1_17_05",
        "ART_FQ_DIR": art,
        # ${UPS_REQ_QUALIFIERS}: the request as written (lar's own, first level)
        "ART_QUALS": "+e9:+prof",
        "SETUP_GCC": f"gcc v4_9_3 -f {SLF6} -z /products",
        "GCC_DIR": "/products/gcc/v4_9_3",
        "GCC_FQ_DIR": gcc,
        "SETUP_TBB": f"tbb v4_3_6 -f {SLF6} -z /products -q e9",
        "TBB_DIR": "/products/tbb/v4_3_6",
    }
    assert messages.warnings() == []


def test_setup_command_of_the_profile_script() -> None:
    assert setup_command(SetupSpec("art", "v1_18_03", "e9:prof")) == "setup art v1_18_03 -q e9:prof"
    assert setup_command(SetupSpec("gcc", "v4_9_3")) == "setup gcc v4_9_3"
    assert setup_command(SetupSpec("tbb", "", "e9")) == "setup tbb -q e9"


def test_current_chain_and_no_chain(chain: Files) -> None:
    """Without a version, the current chain; without one, the real setup is refused (it does
    not take the only version)."""
    env, _ = setup(chain, "tbb", quals="e9")
    assert env["TBB_DIR"] == "/products/tbb/v4_3_6"
    with pytest.raises(SetupRefused, match=r"has no current chain \(or may not exist\)"):
        setup(chain, "gcc")


def test_missing_products_name_the_table_line_and_recipe(chain: Files) -> None:
    with pytest.raises(
        SetupRefused, match=r"r.yaml:7: setup nosuch v1_0_0: ERROR: Product 'nosuch'"
    ):
        setup(chain, "nosuch", "v1_0_0")
    with pytest.raises(
        SetupRefused,
        match=r"r.yaml:7: setup art v1_17_05 -q \+e9:\+debug: ERROR: Product 'art' \(with "
        r"qualifiers 'debug:e9'\), has no v1_17_05 version",
    ):
        setup(chain, "art", "v1_17_05", "+e9:+debug")
    chain.declare("broken", "v1", simple_table("broken", "    setupRequired( gone v2 -q e9 )\n"))
    with pytest.raises(
        SetupRefused,
        match=r"/products/broken/v1/ups/broken.table:8: ERROR: Action parsing failed on "
        r'"setupRequired\( gone v2 -q e9 \)": the real setup is refused .*'
        r"Found no match for product 'gone'",
    ):
        setup(chain, "broken", "v1")


def test_optional_missing_and_conflicting_versions(chain: Files) -> None:
    chain.declare(
        "opt",
        "v1",
        simple_table(
            "opt",
            "    setupOptional( gdb v7_10 )\n"
            "    setupRequired( gcc v4_9_3 )\n"
            "    setupRequired( gcc v5_2_0 )\n"
            "    exeActionOptional(Nothing)\n",
        ),
    )
    env, messages = setup(chain, "opt", "v1")
    assert env["SETUP_GCC"].startswith("gcc v4_9_3 ")  # set up once: v5_2_0 is skipped
    assert "SETUP_GDB" not in env
    assert messages.warnings() == []  # the real ups says nothing of either
    chain.declare("req", "v1", simple_table("req", "    exeActionRequired(Nothing)\n"))
    with pytest.raises(
        SetupRefused,
        match=r"req.table:8: ERROR: Action parsing failed on \"exeActionRequired\(Nothing\)\".*"
        r"There is no ACTION=Nothing section in this table file.",
    ):
        setup(chain, "req", "v1")


def test_conditions_on_the_products_tree(chain: Files) -> None:
    chain.declare(
        "cond",
        "v1",
        simple_table(
            "cond",
            "    if ( test -d ${UPS_PROD_DIR}/lib64 )\n      envSet(LIB, lib64)\n"
            "    else()\n      envSet(LIB, lib)\n    endif ( test -d ${UPS_PROD_DIR}/lib64 )\n"
            "    if ( test -f ${UPS_PROD_DIR}/lib64/libx.so -a ! -z ${UPS_PROD_NAME} )\n      envSet(HAS_X, yes)\n"
            "    endif ( test -f ${UPS_PROD_DIR}/lib64/libx.so -a ! -z ${UPS_PROD_NAME} )\n"
            "    if ( [ ${UPS_PROD_VERSION} != v2 ] )\n      envSet(NOT_V2, yes)\n"
            "    endif ( [ ${UPS_PROD_VERSION} != v2 ] )\n"
            '    if ( test `lsb_release -si` = "Ubuntu" )\n      envSet(UBUNTU, yes)\n'
            '    else()\n      envSet(OTHER, yes)\n    endif ( test `lsb_release -si` = "Ubuntu" )\n'
            "    if ( sh -c 'for d in lib lib64;do [ -d ${UPS_PROD_DIR}/$d ] && exit;done;exit 1' )\n"
            "      envSet(SHELL_TEST, yes)\n"
            "    endif ( sh -c 'for d in lib lib64;do [ -d ${UPS_PROD_DIR}/$d ] && exit;done;exit 1' )\n"
            "    if ( test -d /usr/lib64 )\n      envSet(OUTSIDE, yes)\n"
            "    endif ( test -d /usr/lib64 )\n",
        ),
        extra_files=("lib64/libx.so",),
    )
    env, messages = setup(chain, "cond", "v1")
    assert (env["LIB"], env["HAS_X"], env["NOT_V2"], env["OTHER"]) == ("lib64", "yes", "yes", "yes")
    # cetbuildtools' `sh -c 'for dd in ...;do [ -d ... ] && exit;done;exit 1'` is understood
    assert env["SHELL_TEST"] == "yes"
    assert not {"UBUNTU", "OUTSIDE"} & set(env)
    warnings = messages.warnings()
    assert len(warnings) == 2
    assert "cond.table:19: if ( test `lsb_release -si`" in warnings[0]
    assert "only a shell in the image can tell" in warnings[0]
    assert "cond.table:27: if ( test -d /usr/lib64 ): not in the frozen Env" in warnings[1]
    assert "outside the products tree" in warnings[1]


def test_what_cannot_be_frozen_is_warned_about_and_skipped(chain: Files) -> None:
    chain.declare(
        "odd",
        "v1",
        simple_table(
            "odd",
            "    addAlias(lar, lar -c)\n"
            "    sourceRequired(${UPS_PROD_DIR}/setup.sh, UPS_ENV)\n"
            "    Execute(echo hi, NO_UPS_ENV)\n"  # changes nothing: no warning
            "    Execute(date > /tmp/when, NO_UPS_ENV)\n"
            "    pathPrepend(MANPATH, `cd ${UPS_PROD_DIR};pwd`/man)\n"
            "    envSet(KEPT, ${UPS_PROD_DIR})\n",
        ),
        extra_files=("setup.sh",),
    )
    env, messages = setup(chain, "odd", "v1")
    assert env["KEPT"] == "/products/odd/v1"
    assert "MANPATH" not in env
    assert [w.split(": ", 2)[2] for w in messages.warnings()] == [
        "addAlias(lar, lar -c): not in the frozen Env (aliases exist only in interactive shells)",
        "sourceRequired(${UPS_PROD_DIR}/setup.sh, UPS_ENV): not in the frozen Env "
        "(a sourced script: the script line 'x')",
        "Execute(date > /tmp/when, NO_UPS_ENV): not in the frozen Env (commands are not run at "
        "build time)",
        "pathPrepend(MANPATH, `cd ${UPS_PROD_DIR};pwd`/man): not in the frozen Env (only a "
        "shell in the image can tell: the command substitution `cd /products/odd/v1;pwd`)",
    ]
    assert all("/products/odd/v1/ups/odd.table:" in w for w in messages.warnings())


def test_product_without_table_and_flavor_fallback(chain: Files) -> None:
    chain.declare("data", "v1_00", None, flavor="NULL")
    chain.declare("tool", "v2", None, flavor="Linux64bit+2.6")
    chain.declare("tool", "v2", None, flavor="NULL")
    env, _ = setup(chain, "data", "v1_00")
    assert env["SETUP_DATA"] == "data v1_00 -f NULL -z /products"
    assert env["DATA_DIR"] == "/products/data/v1_00"
    env, _ = setup(chain, "tool", "v2")
    assert env["SETUP_TOOL"] == "tool v2 -f Linux64bit+2.6 -z /products"


def test_optional_qualifiers_and_just_this_product(chain: Files) -> None:
    chain.declare(
        "py",
        "v1",
        simple_table(
            "py",
            "    setupRequired( art v1_17_05 -q +e9:?py2:+prof )\n"
            "    setupRequired( -j larcore v04_31_00 -q e9:prof )\n",
        ),
    )
    env, _ = setup(chain, "py", "v1")
    assert env["SETUP_ART"] == f"art v1_17_05 -f {SLF6} -z /products -q e9:prof"
    assert env["SETUP_LARCORE"].startswith("larcore v04_31_00")


def test_host_flavor() -> None:
    """The flavors `setup -H` tries (upsugo.c), how declared ones match them (linux_flavor_cmp),
    and where an image's host flavor comes from (host.py)."""
    assert host_flavors(["Darwin64bit+14"]) == [
        *(f"Darwin64bit+{n}" for n in range(14, -1, -1)), "Darwin64bit", "NULL", "ANY"
    ]  # fmt: skip
    assert host_flavors([SLF6], exact=True) == [
        SLF6,
        "Linux64bit+2.6",
        "Linux64bit+2",
        "Linux64bit",
        "NULL",
        "ANY",
    ]
    assert same_flavor("Linux64bit+3.10-2.12", SLF6) and not same_flavor("Linux+2.6-2.12", SLF6)
    files = Files()
    files.declare("a", "v1", None, flavor="Linux64bit+2.6")
    files.declare("a", "v1", None, flavor="Linux64bit+3.10-2.17")
    with pytest.raises(
        SourceError,
        match=r"r.yaml:7: setup a v1: .*/products/a/v1.version: a is "
        r"declared for several flavors \(Linux64bit\+2.6, Linux64bit\+3.10-2.17\)",
    ):
        setup(files, "a", "v1")
    env, messages = setup(files, "a", "v1", env={"UPS_OVERRIDE": "-H Linux64bit+3.10-2.17"})
    assert env["SETUP_A"] == "a v1 -f Linux64bit+3.10-2.17 -z /products"
    files.declare("c", "v1", None, flavor="NULL")
    env, messages = setup(files, "c", "v1")
    assert env["SETUP_C"] == "c v1 -f NULL -z /products"
    assert any("/products has no ups product" in m for m in messages.warnings())


def test_a_tree_without_the_product_is_refused() -> None:
    with pytest.raises(
        SetupRefused,
        match=r"r.yaml:7: setup art v1: ERROR: Product 'art' "
        r"\(with qualifiers ''\), has no v1 version \(or may not exist\)",
    ):
        setup(Files({"etc/passwd": b""}), "art", "v1")


def test_dependency_loops_stop(chain: Files) -> None:
    chain.declare("x", "v1", simple_table("x", "    exeActionRequired(setup)\n"))
    with pytest.raises(SourceError, match="too deep"):
        setup(chain, "x", "v1")


def test_request_parsing_through_setup_required(chain: Files) -> None:
    chain.declare("a", "v1", simple_table("a", '    setupRequired("b v2 -qe9:prof -f NULL")\n'))
    chain.declare("b", "v2", None, flavor="NULL", quals="e9:prof")
    env, _ = setup(chain, "a", "v1")
    assert env["SETUP_B"] == "b v2 -f NULL -z /products -q e9:prof"
