"""A real Slurm cluster of one's own, for trying the bench's Slurm targets (and for the tests):
Debian's slurm-wlm 22.05 and munge, started as root with a private slurm.conf, a private munge
key and socket, free ports, and every state, spool and log file under one directory.

With `nodes` > 1, one slurmd per node runs on this machine (node1..nodeN, each on a port of its
own): multi-node submission, srun across nodes and collection work as on a site, but the nodes
share this machine's cores, so timings mean something only up to its real core count.

    with local_slurm(Path("/tmp/slurm")) as cluster:
        subprocess.run(["sbatch", "job.sh"], env=cluster.env)

or from the command line: `ocibuild bench local-slurm DIR` (runs until interrupted).
"""

from __future__ import annotations

import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import cast

from ocibuild.errors import BenchError

PARTITION = "debug"
NODE = "localhost"


@dataclass(frozen=True)
class LocalSlurm:
    root: Path
    conf: Path
    processes: tuple[subprocess.Popen[bytes], ...] = field(default=(), repr=False)
    munge_socket: Path | None = None  # munged's, for `munge -n --socket=...` and `unmunge`

    @property
    def env(self) -> dict[str, str]:
        """The environment Slurm commands (sbatch, squeue, scontrol) need to talk to this cluster."""
        return {**os.environ, "SLURM_CONF": str(self.conf)}

    @property
    def logs(self) -> Path:
        return self.root / "log"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def node_names(nodes: int) -> list[str]:
    return [NODE] if nodes == 1 else [f"node{i}" for i in range(1, nodes + 1)]


def _node_lines(
    names: list[str], ports: list[int], cpus: int, features: tuple[str, ...]
) -> list[str]:
    feature = f" Features={','.join(features)}" if features else ""
    if len(names) == 1:
        return [f"NodeName={names[0]} CPUs={cpus} State=UNKNOWN{feature}"]
    return [
        f"NodeName={name} NodeHostname={NODE} NodeAddr=127.0.0.1 Port={port} CPUs={cpus}"
        f" State=UNKNOWN{feature}"
        for name, port in zip(names, ports, strict=True)
    ]


def slurm_conf(
    root: Path,
    munge_socket: Path,
    plugstack: Path,
    ports: tuple[int, ...],
    cpus: int,
    features: tuple[str, ...] = (),
    nodes: int = 1,
) -> str:
    """What works on these machines (see DESIGN.md): linuxproc tracking (the cgroup default fails
    here), no task plugin, no accounting, SlurmUser root. `ports`: slurmctld's, then one per
    slurmd."""
    names = node_names(nodes)
    per_node = "%n" if nodes > 1 else ""
    suffix = f".{per_node}" if per_node else ""
    return "\n".join(
        [
            "ClusterName=ocibench",
            f"SlurmctldHost={NODE}",
            f"SlurmctldPort={ports[0]}",
            *([f"SlurmdPort={ports[1]}"] if nodes == 1 else []),
            "SlurmUser=root",
            "SlurmdUser=root",
            "AuthType=auth/munge",
            "CredType=cred/munge",
            f"AuthInfo=socket={munge_socket}",
            "ProctrackType=proctrack/linuxproc",
            "TaskPlugin=task/none",
            "SelectType=select/cons_tres",
            "SelectTypeParameters=CR_Core",
            "AccountingStorageType=accounting_storage/none",
            "JobAcctGatherType=jobacct_gather/none",
            "JobCompType=jobcomp/filetxt",
            f"JobCompLoc={root / 'log' / 'jobcomp.txt'}",
            "MailProg=/bin/true",
            "MpiDefault=none",
            "ReturnToService=2",
            "MinJobAge=600",
            f"StateSaveLocation={root / 'state'}",
            f"SlurmdSpoolDir={root / 'spool'}{'/' + per_node if per_node else ''}",
            f"SlurmctldPidFile={root / 'slurmctld.pid'}",
            f"SlurmdPidFile={root / f'slurmd{suffix}.pid'}",
            f"SlurmctldLogFile={root / 'log' / 'slurmctld.log'}",
            f"SlurmdLogFile={root / 'log' / f'slurmd{suffix}.log'}",
            f"PlugStackConfig={plugstack}",
            *_node_lines(names, list(ports[1:]), cpus, features),
            f"PartitionName={PARTITION} Nodes={','.join(names)} Default=YES MaxTime=INFINITE"
            " State=UP",
            "",
        ]
    )


def _munge_dir() -> Path:
    """munged runs as the munge user, wants its key private and every directory up to its socket
    traversable by everyone: a directory of its own under the system's temporary directory."""
    munge = Path(tempfile.mkdtemp(prefix="ocibuild-munge-"))
    munge.chmod(0o755)
    key = munge / "munge.key"
    key.write_bytes(secrets.token_bytes(1024))
    key.chmod(0o600)
    user = pwd.getpwnam("munge")
    for path in (munge, key):
        os.chown(path, user.pw_uid, user.pw_gid)
    return munge


def _start(argv: list[str], log: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
    with open(log, "wb") as out:
        return subprocess.Popen(
            argv, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """Signal the daemon's own process group: runuser does not pass SIGTERM on to munged."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        with suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
        try:
            proc.wait(timeout=10)
            return
        except subprocess.TimeoutExpired:
            continue


def _wait_idle(
    cluster: LocalSlurm, processes: list[subprocess.Popen[bytes]], timeout: float
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for proc in processes:
            if proc.poll() is not None:
                raise BenchError(
                    f"{cast(list[str], proc.args)[0]} exited ({proc.returncode}); see the logs in {cluster.logs}"
                )
        out = subprocess.run(
            ["sinfo", "-h", "-N", "-o", "%T"],
            env=cluster.env,
            check=False,
            capture_output=True,
            text=True,
        )
        states = out.stdout.split()
        if out.returncode == 0 and states and all(state == "idle" for state in states):
            return
        time.sleep(0.2)
    raise BenchError(
        f"the local Slurm nodes did not become idle in {timeout:.0f}s; see the logs in {cluster.logs}"
    )


def _check_tools() -> None:
    missing = [
        tool
        for tool in ("munged", "slurmctld", "slurmd", "sinfo", "runuser")
        if not shutil.which(tool)
    ]
    if missing:
        raise BenchError(f"a local Slurm needs {', '.join(missing)} (Debian: slurm-wlm munge)")
    if os.geteuid() != 0:
        raise BenchError("a local Slurm (slurmd, munged as the munge user) must be started as root")


@contextmanager
def local_slurm(
    root: Path,
    cpus: int | None = None,
    spank_plugins: tuple[Path, ...] = (),
    features: tuple[str, ...] = (),
    timeout: float = 60,
    nodes: int = 1,
) -> Iterator[LocalSlurm]:
    """Start munged, slurmctld and one slurmd per node under `root` (a new or empty directory);
    stop them at exit. Nodes have `features` (for targets asking for a --constraint, as Cori's
    "haswell").
    `spank_plugins` are loaded through the cluster's own plugstack.conf."""
    _check_tools()
    root = root.resolve()
    root.mkdir(parents=True, exist_ok=True)
    root.chmod(0o755)
    for sub in ("state", "spool", "log"):
        (root / sub).mkdir(exist_ok=True)
    plugstack = root / "plugstack.conf"
    plugstack.write_text("".join(f"required {p.resolve()}\n" for p in spank_plugins))
    with ExitStack() as stack:
        munge = _munge_dir()
        stack.callback(shutil.rmtree, munge, ignore_errors=True)
        conf = root / "slurm.conf"
        ports = tuple(free_port() for _ in range(nodes + 1))
        conf.write_text(
            slurm_conf(
                root,
                munge / "munge.socket",
                plugstack,
                ports,
                cpus or os.cpu_count() or 1,
                features,
                nodes,
            )
        )
        cluster = LocalSlurm(root, conf)
        env = cluster.env
        processes = []
        for argv, log in (
            (
                [
                    "runuser",
                    "-u",
                    "munge",
                    "--",
                    "munged",
                    "-F",
                    f"--socket={munge / 'munge.socket'}",
                    f"--key-file={munge / 'munge.key'}",
                    f"--pid-file={munge / 'munged.pid'}",
                    f"--seed-file={munge / 'munged.seed'}",
                    f"--log-file={munge / 'munged.log'}",
                ],
                "munged.out",
            ),
            (["slurmctld", "-D"], "slurmctld.out"),
            *((["slurmd", "-D", "-N", name], f"slurmd.{name}.out") for name in node_names(nodes)),
        ):
            proc = _start(argv, root / "log" / log, env)
            stack.callback(_stop, proc)
            processes.append(proc)
            if argv[0] == "runuser":
                _wait_for(munge / "munge.socket", proc, timeout, root / "log" / log)
        _wait_idle(cluster, processes, timeout)
        yield LocalSlurm(root, conf, tuple(processes), munge / "munge.socket")


def _wait_for(path: Path, proc: subprocess.Popen[bytes], timeout: float, log: Path) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            raise BenchError(
                f"munged did not start: {log.read_text(errors='replace').strip()[-2000:]}"
            )
        time.sleep(0.05)
