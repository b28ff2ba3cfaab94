"""Conformance-suite fixtures: servers started per implementation, clients closed after each test."""

from __future__ import annotations

import os
import signal
import uuid
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from tests.client import Client, open_client
from tests.cluster import SUFFIX, Cluster
from tests.harness import Server, ServerProcess
from tests.implementations import IMPLEMENTATIONS

# A shell starts background jobs with SIGINT ignored, and servers started from here would inherit that: their
# SIGINT shutdown (§14) would never run. Restore Python's own handler, which children get back as the default.
if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)

RUNNING_URL = os.environ.get("CHAT_SERVER_URL", "")
SERVERS = pytest.StashKey[list[tuple[Server, int]]]()


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--impl", default="", help="comma-separated implementations to test (default: all)")
    parser.addoption(
        "--exercise", type=int, default=0, help="run exercise N's tests (tests/exercises/), not the suite's"
    )
    parser.addoption("--stress", action="store_true", help="run SPEC.md §19's scenarios at full size (make stress)")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """The suite without the exercises' tests (they fail until you solve them), or, with ``--exercise=N``,
    exercise N's tests alone."""
    wanted = config.getoption("--exercise")
    keep: list[pytest.Item] = []
    drop: list[pytest.Item] = []
    for item in items:
        marker = item.get_closest_marker("exercise")
        (keep if (marker.args[0] if marker else 0) == wanted else drop).append(item)  # 0: the suite
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep
    if wanted and not keep:
        raise pytest.UsageError(f"No exercise {wanted}: exercises/README.md lists them.")


def selected(config: pytest.Config) -> list[str]:
    if RUNNING_URL:
        return ["running"]
    names = [n for n in str(config.getoption("--impl")).split(",") if n] or list(IMPLEMENTATIONS)
    unknown = set(names) - set(IMPLEMENTATIONS)
    if unknown:
        raise pytest.UsageError(f"Unknown --impl {', '.join(sorted(unknown))}; known: {', '.join(IMPLEMENTATIONS)}.")
    return names


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "impl" in metafunc.fixturenames:
        names = selected(metafunc.config)
        exercise = metafunc.definition.get_closest_marker("exercise")
        if exercise and not metafunc.config.getoption("--impl") and not RUNNING_URL:
            names = [exercise.kwargs["impl"]]  # the chapter the exercise belongs to, unless --impl says otherwise
        markers = list(metafunc.definition.iter_markers("cluster"))
        if RUNNING_URL and any(marker.kwargs.get("only") for marker in markers):
            names = []  # a cluster the suite starts itself: not against CHAT_SERVER_URL
        elif any(marker.kwargs.get("only") for marker in markers):
            names = [name + SUFFIX for name in names]
        elif not RUNNING_URL and markers:
            names += [name + SUFFIX for name in names]  # also as two processes on one Redis (SPEC.md §17)
        metafunc.parametrize("impl", names, scope="session")


class ServerPool:
    """Servers shared by the tests that want the same implementation with the same CHAT_* settings."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.servers: dict[tuple[str, frozenset[tuple[str, str]], str], ServerProcess | Cluster] = {}

    def get(self, impl: str, env: Mapping[str, str], private: str) -> ServerProcess | Cluster:
        key = (impl, frozenset(env.items()), private)
        if key not in self.servers:
            self.servers[key] = self.start(impl, env)
        return self.servers[key]

    def start(
        self, impl: str, env: Mapping[str, str], descriptors: tuple[int, int] | None = None
    ) -> ServerProcess | Cluster:
        if impl.endswith(SUFFIX):
            assert descriptors is None, "a cluster's processes inherit the suite's descriptor limit"
            return Cluster(IMPLEMENTATIONS[impl.removesuffix(SUFFIX)], env, self.log_dir).start()
        return ServerProcess(IMPLEMENTATIONS[impl], env, self.log_dir, descriptors).start()

    def stop_all(self) -> None:
        for server in self.servers.values():
            server.stop()


@pytest.fixture(scope="session")
def pool(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerPool]:
    servers = ServerPool(tmp_path_factory.mktemp("server-logs"))
    yield servers
    servers.stop_all()


MakeServer = Callable[..., Server]


@pytest.fixture
def make_server(impl: str, pool: ServerPool, request: pytest.FixtureRequest) -> Iterator[MakeServer]:
    """``make_server(env)``: a server of this implementation with these CHAT_* settings, shared with other
    tests asking for the same; ``private="name"`` for one shared only by tests passing that name;
    ``fresh=True`` for one of the test's own, stopped after it (``descriptors=(soft, hard)``: with that limit
    on open descriptors). Against CHAT_SERVER_URL, only the running server's own settings are possible (a
    private server is then that one, too)."""
    own: list[ServerProcess | Cluster] = []

    def make(
        env: Mapping[str, str] | None = None,
        *,
        private: str = "",
        fresh: bool = False,
        descriptors: tuple[int, int] | None = None,
    ) -> Server:
        env = dict(env or {})
        fresh = fresh or descriptors is not None
        server: Server
        if RUNNING_URL:
            if env or fresh:
                pytest.skip(
                    f"needs a server the suite starts itself ({env or 'a fresh one'}); not with CHAT_SERVER_URL"
                )
            server = Server("running", RUNNING_URL, os.environ.get("CHAT_SECRET"), {})
        elif fresh:
            server = pool.start(impl, env, descriptors)
            own.append(server)
        else:
            server = pool.get(impl, env, private)
        show_logs_on_failure(request, server)
        return server

    yield make
    for server in own:
        server.stop()


def show_logs_on_failure(request: pytest.FixtureRequest, server: Server) -> None:
    """If the test fails, its report shows what ``server`` (each process of a cluster) logged during the test."""
    processes = server.members if isinstance(server, Cluster) else [server]
    request.node.stash.setdefault(SERVERS, []).extend((process, process.log_size()) for process in processes)


@pytest.fixture
def server(make_server: MakeServer) -> Server:
    """The implementation with default settings."""
    return make_server()


@pytest.fixture
def room() -> str:
    """A room of the test's own."""
    return f"t-{uuid.uuid4().hex[:16]}"


class Connector:
    """``await connect(server, room, "alice", since=0)``: an open client that is closed after the test."""

    def __init__(self) -> None:
        self.clients: list[Client] = []

    async def __call__(self, server: Server, room: str, user: str = "alice", **options: Any) -> Client:
        client = await open_client(server.for_client(), room, user, **options)  # a cluster's processes in turn
        client.cluster = isinstance(server, Cluster)
        self.clients.append(client)
        return client

    async def close_all(self) -> None:
        for client in self.clients:
            await client.close()  # returns at once if the server closed it already


@pytest.fixture
async def connect() -> AsyncIterator[Connector]:
    connector = Connector()
    yield connector
    await connector.close_all()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    report: Any = yield
    if report.failed:
        for server, start in item.stash.get(SERVERS, []):
            report.sections.append((f"server log: {server.name} at {server.url}", server.log(start) or "(empty)"))
    return report  # type: ignore[no-any-return]
