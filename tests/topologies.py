"""Private Redis topologies on free ports, for tests of Sentinel failover and Redis Cluster.

`SentinelSet`: a primary, a replica and three sentinels watching service "taskcast".
`ClusterSet`: a three-primary Redis Cluster (no replicas). Both run real `redis-server`
processes in a directory of their own, log each process to a file there, bound every wait
(the error names what did not happen and ends with the tail of the logs that matter), and
leave no process behind: a `start()` that fails stops what it had started.

The fixtures `sentinel_set` and `redis_cluster` (tests/conftest.py) start and stop them.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import IO, Any

import redis

SERVICE = "taskcast"
HOST = "127.0.0.1"
_LOG_TAIL_LINES = 25


def free_port() -> int:
    """A port free on 127.0.0.1 now (the same as tests/conftest.py's)."""
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def _free_ports(count: int) -> list[int]:
    ports: list[int] = []
    while len(ports) < count:
        port = free_port()
        if port not in ports:
            ports.append(port)
    return ports


def _redis_server() -> str:
    return shutil.which("redis-server") or "redis-server"


def _tail(path: Path, lines: int = _LOG_TAIL_LINES) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError as exc:
        return f"(no log: {exc})"
    return "\n".join(text.splitlines()[-lines:]) or "(empty)"


class _Topology:
    """Processes kept by port, their logs, cached clients and the bounded wait they share."""

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self._processes: dict[int, subprocess.Popen[bytes]] = {}
        self._log_files: dict[int, IO[bytes]] = {}
        self._logs: dict[int, Path] = {}
        self._names: dict[int, str] = {}
        self._clients: dict[int, redis.Redis] = {}

    # processes -----------------------------------------------------------------------------

    def _spawn(self, port: int, name: str, command: list[str], cwd: Path) -> None:
        log_path = self.directory / f"{name}.log"
        log = open(log_path, "ab")  # noqa: SIM115 - closed when the process is reaped
        try:
            process = subprocess.Popen(command, cwd=cwd, stdout=log, stderr=subprocess.STDOUT)
        except BaseException:
            log.close()
            raise
        self._processes[port] = process
        self._log_files[port] = log
        self._logs[port] = log_path
        self._names[port] = name

    def _kill(self, port: int) -> None:
        process = self._processes.pop(port, None)
        if process is not None:
            if process.poll() is None:
                process.kill()
            process.wait(timeout=10)
        log = self._log_files.pop(port, None)
        if log is not None:
            log.close()
        client = self._clients.pop(port, None)
        if client is not None:
            client.close()

    def stop(self) -> None:
        """Kill every process and wait for each; safe to call twice or after a failed start."""
        errors: list[BaseException] = []
        for port in list(self._processes):
            try:
                self._kill(port)
            except BaseException as exc:  # keep killing the others
                errors.append(exc)
        for client in self._clients.values():
            client.close()
        self._clients.clear()
        if errors:
            raise errors[0]

    def _started(self, start: Callable[[], None]) -> None:
        try:
            start()
        except BaseException:
            self.stop()
            raise

    # clients and waits ---------------------------------------------------------------------

    def _client(self, port: int) -> redis.Redis:
        client = self._clients.get(port)
        if client is None:
            client = redis.Redis(
                host=HOST,
                port=port,
                socket_timeout=1,
                socket_connect_timeout=1,
                decode_responses=True,
            )
            self._clients[port] = client
        return client

    def _logs_of(self, ports: Iterable[int]) -> str:
        return "\n".join(
            f"--- {self._names[port]} (port {port}), last lines of {self._logs[port]}:\n"
            f"{_tail(self._logs[port])}"
            for port in ports
            if port in self._logs
        )

    def _check_alive(self, ports: Iterable[int]) -> None:
        for port in ports:
            process = self._processes.get(port)
            if process is not None and process.poll() is not None:
                raise AssertionError(
                    f"{self._names[port]} (port {port}) exited with code {process.returncode}\n"
                    + self._logs_of([port])
                )

    def _wait(
        self,
        what: str,
        check: Callable[[], bool],
        timeout: float,
        ports: Iterable[int],
        describe: Callable[[], str] | None = None,
    ) -> None:
        """Poll `check` until it is true; a TimeoutError saying `what` did not happen if not."""
        ports = list(ports)
        deadline = time.monotonic() + timeout
        last_error: BaseException | None = None
        while True:
            self._check_alive(ports)
            try:
                if check():
                    return
                last_error = None
            except redis.RedisError as exc:
                last_error = exc
            if time.monotonic() >= deadline:
                seen = describe() if describe is not None else ""
                raise TimeoutError(
                    f"{what} did not happen within {timeout:.1f} s"
                    + (f" (last error: {last_error!r})" if last_error is not None else "")
                    + (f"\nlast seen: {seen}" if seen else "")
                    + "\n"
                    + self._logs_of(ports)
                )
            time.sleep(0.05)

    def _answers(self, port: int) -> bool:
        try:
            return bool(self._client(port).ping())
        except redis.RedisError:
            return False


class SentinelSet(_Topology):
    """A primary, its replica and three sentinels (quorum 2) watching service "taskcast"."""

    service = SERVICE

    def __init__(self, directory: Path) -> None:
        super().__init__(directory)
        ports = _free_ports(5)
        self.primary_port, self.replica_port = ports[0], ports[1]
        self.sentinel_ports = ports[2:]

    @property
    def redis_ports(self) -> list[int]:
        return [self.primary_port, self.replica_port]

    @property
    def sentinels(self) -> list[tuple[str, int]]:
        return [(HOST, port) for port in self.sentinel_ports]

    @property
    def url(self) -> str:
        hosts = ",".join(f"{HOST}:{port}" for port in self.sentinel_ports)
        return f"redis+sentinel://{hosts}/{SERVICE}/0"

    def _server_command(self, port: int, directory: Path) -> list[str]:
        return [
            _redis_server(),
            "--port", str(port), "--bind", HOST, "--dir", str(directory),
            "--save", "", "--appendonly", "no",
            # A replica's first sync starts at once, not after the default 5 s wait.
            "--repl-diskless-sync-delay", "0",
        ]  # fmt: skip

    def _sentinel_conf(self, port: int, directory: Path) -> Path:
        conf = directory / "sentinel.conf"
        conf.write_text(
            f"port {port}\n"
            f"bind {HOST}\n"
            f'dir "{directory}"\n'
            "sentinel resolve-hostnames no\n"
            f"sentinel monitor {SERVICE} {HOST} {self.primary_port} 2\n"
            f"sentinel down-after-milliseconds {SERVICE} 1000\n"
            f"sentinel failover-timeout {SERVICE} 5000\n"
            f"sentinel parallel-syncs {SERVICE} 1\n"
        )
        return conf

    def start(self, timeout: float = 20) -> None:
        """Start all five processes and wait until the set is ready for a failover."""
        self._started(lambda: self._start(timeout))

    def _start(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout

        def left() -> float:
            return max(0.5, deadline - time.monotonic())

        for port, name in [(self.primary_port, "primary"), (self.replica_port, "replica")]:
            directory = self.directory / f"{name}-{port}"
            directory.mkdir()
            command = self._server_command(port, directory)
            if name == "replica":
                command += ["--replicaof", HOST, str(self.primary_port)]
            self._spawn(port, f"redis-{name}-{port}", command, directory)
        self._wait(
            "the primary and the replica answering PING",
            lambda: all(self._answers(port) for port in self.redis_ports),
            left(),
            self.redis_ports,
        )
        # Before the sentinels start, so that their first INFO of the primary lists it:
        # otherwise they learn of the replica only at the next INFO, 10 s later.
        self._wait(
            "the replica reporting master_link_status:up",
            lambda: (
                self._client(self.replica_port).info("replication").get("master_link_status")
                == "up"
            ),
            left(),
            self.redis_ports,
            lambda: str(self._client(self.replica_port).info("replication")),
        )
        for port in self.sentinel_ports:
            directory = self.directory / f"sentinel-{port}"
            directory.mkdir()
            conf = self._sentinel_conf(port, directory)
            self._spawn(
                port, f"sentinel-{port}", [_redis_server(), str(conf), "--sentinel"], directory
            )
        all_ports = self.sentinel_ports + self.redis_ports  # their logs in this order
        self._wait(
            "every sentinel answering PING",
            lambda: all(self._answers(port) for port in self.sentinel_ports),
            left(),
            all_ports,
        )
        self._wait(
            "every sentinel knowing the replica and the two other sentinels",
            lambda: all(self._sentinel_ready(port) for port in self.sentinel_ports),
            left(),
            all_ports,
            self._describe_sentinels,
        )

    def _sentinel_ready(self, port: int) -> bool:
        client = self._client(port)
        replicas = [
            r
            for r in client.sentinel_slaves(SERVICE)
            if not {"s_down", "o_down", "disconnected"} & set(str(r.get("flags", "")).split(","))
        ]
        return bool(replicas) and len(client.sentinel_sentinels(SERVICE)) == 2

    def _describe_sentinels(self) -> str:
        parts = []
        for port in self.sentinel_ports:
            try:
                client = self._client(port)
                replicas = [f"{r['ip']}:{r['port']}" for r in client.sentinel_slaves(SERVICE)]
                others = [f"{s['ip']}:{s['port']}" for s in client.sentinel_sentinels(SERVICE)]
                parts.append(f"sentinel {port}: replicas {replicas}, sentinels {others}")
            except redis.RedisError as exc:
                parts.append(f"sentinel {port}: {exc!r}")
        return "; ".join(parts)

    def _addresses(self) -> dict[int, tuple[str, int] | None]:
        """What each sentinel that answers says the primary's address is."""
        seen: dict[int, tuple[str, int] | None] = {}
        for port in self.sentinel_ports:
            try:
                addr = self._client(port).sentinel_get_master_addr_by_name(SERVICE)
            except redis.RedisError:
                continue
            seen[port] = (str(addr[0]), int(addr[1])) if addr else None
        return seen

    def primary(self) -> tuple[str, int]:
        """The primary's address, as the first sentinel that answers gives it."""
        for addr in self._addresses().values():
            if addr is not None:
                return addr
        raise AssertionError(f"no sentinel gave an address for {SERVICE!r}")

    def kill_primary(self) -> tuple[str, int]:
        """SIGKILL the process of the current primary (whichever it is); its address."""
        addr = self.primary()
        if addr[1] not in self._processes:
            raise AssertionError(f"the sentinels' primary {addr} is not a process of this set")
        self._kill(addr[1])
        return addr

    def wait_failover(self, old: tuple[str, int], timeout: float = 30) -> tuple[str, int]:
        """Until every sentinel that answers gives one new address, and it answers ROLE master."""
        found: list[tuple[str, int]] = []

        def failed_over() -> bool:
            addresses = set(self._addresses().values())
            if len(addresses) != 1:
                return False
            (addr,) = addresses
            if addr is None or addr == old:
                return False
            role = self._client(addr[1]).execute_command("ROLE")
            if role[0] != "master":
                return False
            found[:] = [addr]
            return True

        self._wait(
            f"a failover of {SERVICE!r} away from {old[0]}:{old[1]}",
            failed_over,
            timeout,
            self.sentinel_ports,
            lambda: f"sentinels' addresses {self._addresses()}",
        )
        return found[0]


class ClusterSet(_Topology):
    """A Redis Cluster of three primaries (no replicas), every slot assigned."""

    def __init__(self, directory: Path) -> None:
        super().__init__(directory)
        # Each node's cluster bus gets a free port of its own (`cluster-port`): the default,
        # port + 10000, may be taken or past 65535.
        ports = _free_ports(6)
        self.ports = ports[:3]
        self._bus_ports = dict(zip(self.ports, ports[3:], strict=True))

    @property
    def url(self) -> str:
        return "redis+cluster://" + ",".join(f"{HOST}:{port}" for port in self.ports)

    def _node_dir(self, port: int) -> Path:
        return self.directory / f"node-{port}"

    def _start_node(self, port: int) -> None:
        directory = self._node_dir(port)
        directory.mkdir(exist_ok=True)
        command = [
            _redis_server(),
            "--port", str(port), "--cluster-port", str(self._bus_ports[port]),
            "--cluster-enabled", "yes", "--cluster-config-file", f"nodes-{port}.conf",
            "--cluster-node-timeout", "2000", "--save", "", "--appendonly", "no",
            "--dir", str(directory), "--bind", HOST,
        ]  # fmt: skip
        self._spawn(port, f"cluster-node-{port}", command, directory)

    def start(self, timeout: float = 30) -> None:
        """Start the three nodes, create the cluster, and wait until it is ok everywhere."""
        self._started(lambda: self._start(timeout))

    def _start(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        for port in self.ports:
            self._start_node(port)
        self._wait(
            "every cluster node answering PING",
            lambda: all(self._answers(port) for port in self.ports),
            max(0.5, deadline - time.monotonic()),
            self.ports,
        )
        create_log = self.directory / "cluster-create.log"
        command = [shutil.which("redis-cli") or "redis-cli", "--cluster", "create"]
        command += [f"{HOST}:{port}" for port in self.ports]
        command += ["--cluster-replicas", "0", "--cluster-yes"]
        with open(create_log, "wb") as log:
            try:
                code = subprocess.run(
                    command,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    timeout=max(1.0, deadline - time.monotonic()),
                ).returncode
            except subprocess.TimeoutExpired:
                code = None
        if code != 0:
            raise AssertionError(
                f"redis-cli --cluster create {'timed out' if code is None else f'exited {code}'}"
                f"\n--- {create_log}:\n{_tail(create_log)}\n" + self._logs_of(self.ports)
            )
        self._wait_ok(max(0.5, deadline - time.monotonic()))

    def _cluster_info(self, port: int) -> dict[str, Any]:
        info: dict[str, Any] = self._client(port).execute_command("CLUSTER INFO")
        return info

    def _node_ok(self, port: int) -> bool:
        info = self._cluster_info(port)
        return (
            str(info.get("cluster_state")) == "ok"
            and int(info.get("cluster_slots_assigned", 0)) == 16384
            and int(info.get("cluster_known_nodes", 0)) == len(self.ports)
        )

    def _describe(self) -> str:
        parts = []
        for port in self.ports:
            try:
                info = self._cluster_info(port)
                parts.append(
                    f"{port}: state {info.get('cluster_state')}, "
                    f"slots assigned {info.get('cluster_slots_assigned')}, "
                    f"slots ok {info.get('cluster_slots_ok')}, "
                    f"known nodes {info.get('cluster_known_nodes')}"
                )
            except redis.RedisError as exc:
                parts.append(f"{port}: {exc!r}")
        return "; ".join(parts)

    def _wait_ok(self, timeout: float) -> None:
        self._wait(
            "cluster_state:ok with all 16384 slots assigned on every node",
            lambda: all(self._node_ok(port) for port in self.ports),
            timeout,
            self.ports,
            self._describe,
        )

    def node_for_key(self, key: str) -> int:
        """The port of the node that owns `key`'s slot (CLUSTER KEYSLOT, CLUSTER SLOTS)."""
        client = self._client(self.ports[0])
        slot = int(client.execute_command("CLUSTER KEYSLOT", key))
        for row in client.execute_command("CLUSTER SLOTS"):
            first, last, owner = int(row[0]), int(row[1]), row[2]
            if first <= slot <= last:
                return int(owner[1])
        raise AssertionError(f"no node owns slot {slot} (key {key!r})")

    def restart(self, port: int, timeout: float = 30) -> None:
        """SIGKILL one node and start it again, same port, dir and nodes conf; wait until ok.

        Nothing is persisted: the node comes back with its slots but none of its keys.
        """
        if port not in self.ports:
            raise AssertionError(f"{port} is not a node of this cluster ({self.ports})")
        self._kill(port)
        self._start_node(port)
        self._wait_ok(timeout)
