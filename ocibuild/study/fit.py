"""podman, and podman-hpc (which runs it), as a newcomer meets them: rootful podman sets
RLIMIT_NOFILE and RLIMIT_NPROC to 1048576 in every container, which fails (`crun: setrlimit
RLIMIT_NOFILE: Operation not permitted`, exit 126) where the hard limits are lower and the
process lacks CAP_SYS_RESOURCE, and crun refuses hybrid cgroup v1 + v2 hosts.

Before the jobs of a target that runs here, one `run` of the image tells whether containers
start. When they do not for one of those reasons, the runs get the options that make them start
(`--ulimit nofile=N:N --ulimit nproc=M:M`, N and M this machine's hard limits, then also
`--runtime runc`), first tried the same way, said in one line and kept in the run's metadata; the
site's containers.conf (`[containers] default_ulimits = []`, `[engine] runtime = "runc"`) is the
lasting fix. When no options help, the bench stops with the runtime's error and that fix.
"""

from __future__ import annotations

import os
import pwd
import resource
import shlex
import shutil
import subprocess
from pathlib import Path

from ocibuild.errors import BenchError
from ocibuild.progress import Message, Reporter
from ocibuild.study.scripts import NEEDS_USER
from ocibuild.study.targets import Target

FITTED_RUNTIMES = ("podman", "podman-hpc")
PODMAN_RLIMIT = 1048576  # what rootful podman sets both limits to
RLIMIT_SIGNS = ("setrlimit", "error setting rlimit", "cgroups in hybrid mode")
PROBE_TIMEOUT = 300
PID_MAX = "/proc/sys/kernel/pid_max"
FIX = (
    'the lasting fix: `[containers] default_ulimits = []` and `[engine] runtime = "runc"` in a '
    "containers.conf named by CONTAINERS_CONF (the target's `env:`), or these options in its "
    "`run_options:`"
)


def hard_limit_options() -> tuple[str, ...]:
    """`--ulimit` options at the highest limits podman can give: this process's hard limits
    (podman's own value where higher); for processes, no more than the kernel's pid_max, to
    which podman lowers its own limit (measured: 96367 here became 32768)."""
    options: list[str] = []
    for name, limit in (("nofile", resource.RLIMIT_NOFILE), ("nproc", resource.RLIMIT_NPROC)):
        hard = resource.getrlimit(limit)[1]
        value = PODMAN_RLIMIT if hard == resource.RLIM_INFINITY else min(hard, PODMAN_RLIMIT)
        if name == "nproc":
            value = min(value, _pid_max())
        options += ["--ulimit", f"{name}={value}:{value}"]
    return tuple(options)


def _pid_max() -> int:
    try:
        return int(Path(PID_MAX).read_text())
    except (OSError, ValueError):
        return PODMAN_RLIMIT


def candidates() -> list[tuple[str, ...]]:
    ulimits = hard_limit_options()
    runc = ("--runtime", "runc") if shutil.which("runc") else ()
    return [ulimits, (*runc, *ulimits)] if runc else [ulimits]


def probe(target: Target, image: str, env: dict[str, str], options: tuple[str, ...]) -> str | None:
    """Run `true` in the image as the jobs will run it: None when it ran, else the runtime's
    last line of error."""
    argv = [*target.runtime_command, "run", "--rm", *options, *target.run_options, image]
    argv += [*target.inner_shell, "true"]
    if target.runtime in NEEDS_USER and not env.get("USER"):  # as the job script sets it
        env = {**env, "USER": pwd.getpwuid(os.getuid()).pw_name}
    try:
        proc = subprocess.run(
            argv, env=env, capture_output=True, text=True, timeout=PROBE_TIMEOUT, check=False
        )
    except FileNotFoundError:
        raise BenchError(f"{target.name}: command {argv[0]!r} not found") from None
    except subprocess.TimeoutExpired:
        return f"{shlex.join(argv)} did not finish in {PROBE_TIMEOUT}s"
    if proc.returncode == 0:
        return None
    lines = [line.strip() for line in proc.stderr.splitlines() if line.strip()]
    return lines[-1] if lines else f"exit status {proc.returncode}"


def fit_runtime(
    target: Target, image: str, env: dict[str, str], report: Reporter
) -> tuple[str, ...]:
    """The options the runs of `image` on `target` need here, before the target's own (see the
    module's docstring); none when they start as they are."""
    if target.runtime not in FITTED_RUNTIMES or target.scheduler != "local":
        return ()
    error = probe(target, image, env, ())
    if error is None:
        return ()
    runtime = target.runtime_command[0]
    if not any(sign in error for sign in RLIMIT_SIGNS):
        raise BenchError(f"{target.name}: {runtime} cannot run {image} here: {error}")
    for options in candidates():
        if probe(target, image, env, options) is None:
            report(
                Message(
                    f"{runtime} cannot start containers here with its defaults ({error}); "
                    f"the runs use {shlex.join(options)} ({FIX})",
                    level="warning",
                )
            )
            return options
    raise BenchError(
        f"{target.name}: {runtime} cannot start containers here ({error}), even with "
        f"{shlex.join(candidates()[-1])}; {FIX}"
    )
