"""ocibuild's `setup:` against every run of the real ups v6_0_8 recorded in tests/ups/realups/
(its README.md is the spec): the frozen Env equal to the real environment after `setup`, and
ups's messages equal to what it printed; where the real setup is refused, the same refusal
with the same messages; where its shell code stops, the same stop, status and environment.

Each run goes through `frozen_environment`, the code the `setup:` source runs; a
representative subset is built into images with `ocibuild recipe` (test_realups_images).
AUTHORIZED_NODES is the one designed difference: an image has no node, so ocibuild warns,
naming the nodes, and gives the environment the real setup gives on an authorized node."""

from __future__ import annotations

from dataclasses import replace

import pytest

from ocibuild.errors import Origin, SourceError
from ocibuild.progress import Event, Message
from ocibuild.sources.setup import frozen_environment
from ocibuild.sources.specs import SetupSpec
from ocibuild.ups.environment import Frozen
from ocibuild.ups.upserrors import SetupFailed, SetupRefused
from tests.ups.realups_runs import (
    ProbeImage,
    Run,
    base_env,
    comparable,
    recorded_env,
    runs,
    setup_spec,
)

ORIGIN = Origin("r.yaml", 7)
RUNS = [r for r in runs() if comparable(r)]


class Messages(list[str]):
    def __call__(self, event: Event) -> None:
        if isinstance(event, Message):
            self.append(f"{event.level}: {event.message}")


def freeze(run: Run, spec: SetupSpec | None = None) -> tuple[Frozen, Messages]:
    messages = Messages()
    spec = spec or setup_spec(run, ORIGIN)
    frozen = frozen_environment(ProbeImage(run.probe), spec, messages, base_env(run))
    return frozen, messages


def authorized_twin(run: Run) -> Run:
    """The same command recorded on a node its AUTHORIZED_NODES allows."""
    return next(
        r
        for r in runs()
        if (r.probe, r.command, r.products) == (run.probe, run.command, run.products)
        and r.exit == 0
    )


@pytest.mark.parametrize("run", RUNS, ids=[r.name for r in RUNS])
def test_the_real_ups_run(run: Run) -> None:
    if run.refused and "is not authorized for use on this node" in run.stderr:
        frozen, messages = freeze(run)
        assert recorded_env(frozen.env) == authorized_twin(run).env
        assert any("AUTHORIZED_NODES" in m and "an image has no node" in m for m in messages)
    elif run.refused:
        with pytest.raises(SetupRefused) as refused:
            freeze(run)
        assert list(refused.value.messages) == run.ups_messages
        assert str(refused.value).startswith(("r.yaml:7: setup ", "/products/setup: setup ups"))
    elif run.exit:
        with pytest.raises(SetupFailed) as failed:
            freeze(run)
        assert failed.value.status == run.exit
        assert recorded_env(failed.value.env) == run.env
        assert failed.value.output in (run.stdout + run.stderr)
    else:
        frozen, _ = freeze(run)
        assert recorded_env(frozen.env) == run.env
        assert list(frozen.messages) == run.ups_messages


def test_every_recorded_run_is_compared() -> None:
    """Only the run that changes ups's own UPS_DIR after `source` is left out."""
    left_out = [r.name for r in runs() if not comparable(r)]
    assert left_out == [
        "version-expansion: setup ve_upsdir v1_0 export UPS_DIR=/products/ups/v6_0_8/Linux64bit+3.10-2.17/x"
    ]
    assert len(RUNS) == len(runs()) - 1 == 384


def test_a_hundred_products_one_broken_every_other_set_up_as_the_real_ups_does() -> None:
    hundred = [r for r in RUNS if r.probe == "hundred-products"]
    assert len({r.command[0] for r in hundred}) == 100
    for run in hundred:
        if run.command[0] == "p042":
            with pytest.raises(SetupRefused):
                freeze(run)
            continue
        frozen, messages = freeze(run)
        assert recorded_env(frozen.env) == run.env, run.name
        assert not [m for m in messages if m.startswith("warning") and "p042" in m]


@pytest.mark.parametrize(
    ("probe", "command"),
    [("failures", "fs_req_missing v1_0"), ("failures", "fs_reqcheck_fails v1_0")],
)
def test_missing_warn_goes_on_where_the_shell_stops(probe: str, command: str) -> None:
    """With `missing: warn` the frozen Env is the environment the real shell had where it
    stopped."""
    (run,) = [r for r in RUNS if r.probe == probe and " ".join(r.command) == command]
    spec = setup_spec(run, ORIGIN)
    frozen, messages = freeze(run, replace(spec, missing="warn"))
    assert recorded_env(frozen.env) == run.env
    assert any("the real setup stops here; so does this one" in m for m in messages)


def test_missing_warn_and_refuse_around_the_last_error_rule() -> None:
    """A miss the real setup refuses: `missing: warn` goes on without the product; a miss
    the real setup forgives (a file read after it): `missing: refuse` refuses it."""
    (refused,) = [r for r in RUNS if r.command == ("fm_nowhere_last", "v1_0")]
    spec = setup_spec(refused, ORIGIN)
    frozen, messages = freeze(refused, replace(spec, missing="warn"))
    assert frozen.env["FM_BEFORE"] == "1" and "SETUP_NOSUCH" not in frozen.env
    assert any("missing: warn goes on" in m for m in messages)
    (forgiven,) = [r for r in RUNS if r.command == ("fm_exe_nowhere_then_dep", "v1_0")]
    spec = setup_spec(forgiven, ORIGIN)
    with pytest.raises(SourceError, match=r"Found no match for product 'nosuch'"):
        freeze(forgiven, replace(spec, missing="refuse"))
