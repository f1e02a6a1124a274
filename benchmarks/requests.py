"""Per-request benchmark (`make bench-requests`): the service against a floor app, in the same run.

The service runs as users run it, with its bearer-token checks and its audit trail (every request below
leaves an AuditEvent: a create's in its own transaction, a read's or search's through the buffer), and the
IPT content loaded at start. The floor (`benchmarks.floor`) is FastAPI and
asyncpg over one `jsonb` table with no validation, no authorization and no audit: the least the same stack
does for the same requests. Both get the same request bytes (a ~2.5 kB QuestionnaireResponse to the IPT
interpersonal inventory, whose subject exists) and the same headers, and run as the same number of
processes on their own databases of the same embedded PostgreSQL.

Operations: create (`POST QuestionnaireResponse`), read by id, search `QuestionnaireResponse?subject=
Patient/p` (10 hits), and `GET /health` against a bare Starlette app's (both run `SELECT 1`). Each at 1, 8
and 32 clients in a closed loop (each client sends its next request when the last one has been answered,
over a keep-alive connection of its own), for `--seconds` per round, `--repetitions` rounds per side, the
service and the floor alternating round by round. Figures are medians over the rounds: throughput, the
median and 99th percentile latency of the round, and CPU per request: the CPU time (user + system, from
/proc) the server processes and every PostgreSQL process spent during the round, over the requests
answered. The client's own CPU is shown apart; it runs on the same machine.

Process layout: `--processes` uvicorn processes per app (default one per CPU), each on a port of its own,
client n talking to process n mod N, as a load balancer would spread them. `--shared-socket` runs one
uvicorn with `--workers N` per app instead, as `ipt-fhir serve --workers N` does, where the kernel decides
which worker accepts each connection.

Usage: `python -m benchmarks.requests [--quick] [--seconds S] [--repetitions N] [--clients 1,8,32]
[--operations read,search,create,health] [--processes N] [--shared-socket]`
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import shlex
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import orjson

from benchmarks import floor
from benchmarks.harness import Server, auth_headers, dsn, fresh_database, postmaster_pid, servers

DATABASE = "ipt_fhir_bench_requests"
FLOOR_DATABASE = "ipt_fhir_bench_floor"
QUESTIONNAIRE = "http://example.org/fhir/ipt/Questionnaire/interpersonal-inventory|1.0.0"
SEARCH_PATIENT = "bench-search"
CREATE_PATIENT = "bench-create"
MATCHES = 10
OPERATIONS = ("read", "search", "create", "health")
LABELS = {
    "read": "`GET QuestionnaireResponse/id`",
    "search": "`GET QuestionnaireResponse?subject=Patient/p` (10 hits)",
    "create": "`POST QuestionnaireResponse`",
    "health": "`GET /health` (floor: bare Starlette)",
}
# The goals: the least share of the floor's throughput, and the most CPU per request (ms).
RATIO_GOALS = {"read": 0.60, "search": 0.55, "create": 0.45, "health": 0.80}
CPU_GOALS = {"read": 0.75, "search": 1.2, "create": 1.4}


# --- the request body -------------------------------------------------------------------------------


def _coding(system: str, code: str, display: str) -> dict[str, str]:
    return {"system": f"http://example.org/fhir/ipt/CodeSystem/{system}", "code": code, "display": display}


def _answer(link_id: str, *answers: dict[str, Any]) -> dict[str, Any]:
    return {"linkId": link_id, "answer": list(answers)}


def _group(link_id: str, *items: dict[str, Any]) -> dict[str, Any]:
    return {"linkId": link_id, "item": list(items)}


def inventory_response(patient: str) -> dict[str, Any]:
    """A completed interpersonal inventory of about 2.5 kB: valid against the worksheet as loaded."""
    return {
        "resourceType": "QuestionnaireResponse",
        "questionnaire": QUESTIONNAIRE,
        "status": "completed",
        "subject": {"reference": f"Patient/{patient}"},
        "authored": "2024-05-31T10:00:00Z",
        "item": [
            _answer(
                "communication-style",
                {
                    "valueString": "Tends to withdraw when upset and waits for others to notice; finds it "
                    "hard to say what she needs, and apologises for asking. Speaks openly with her sister "
                    "but avoids conflict with her partner and her manager."
                },
            ),
            _group(
                "disputes",
                _answer("disputes.person", {"valueString": "Partner (Alex)"}),
                _answer(
                    "disputes.issue",
                    {
                        "valueString": "Sharing of household tasks since the move; each feels the other "
                        "does not listen, and arguments end in silence for days."
                    },
                ),
            ),
            _group(
                "losses-and-transitions",
                _answer(
                    "losses-and-transitions.type",
                    {"valueCoding": _coding("ipt-life-event-type", "loss", "Loss")},
                ),
                _answer("losses-and-transitions.date", {"valueDate": "2023-11-02"}),
                _answer(
                    "losses-and-transitions.description",
                    {"valueString": "Her grandmother, who raised her, died after a long illness."},
                ),
            ),
            _group(
                "losses-and-transitions",
                _answer(
                    "losses-and-transitions.type",
                    {"valueCoding": _coding("ipt-life-event-type", "transition", "Life transition")},
                ),
                _answer("losses-and-transitions.date", {"valueDate": "2024-02-15"}),
                _answer(
                    "losses-and-transitions.description",
                    {"valueString": "Moved to a new city for her partner's job, away from friends."},
                ),
            ),
            _group(
                "social-support",
                _answer("social-support.person", {"valueString": "Sister (Maria)"}),
                _answer(
                    "social-support.kind",
                    {"valueCoding": _coding("ipt-support-kind", "emotional", "Emotional")},
                    {"valueCoding": _coding("ipt-support-kind", "advice", "Advice and information")},
                ),
            ),
            _answer(
                "primary-focus", {"valueCoding": _coding("ipt-problem-area", "role-dispute", "Role dispute")}
            ),
            _answer(
                "secondary-focus",
                {"valueCoding": _coding("ipt-problem-area", "grief", "Grief")},
                {"valueCoding": _coding("ipt-problem-area", "role-transition", "Role transition")},
            ),
        ],
    }


# --- CPU and memory, from /proc -----------------------------------------------------------------------

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def _processes() -> dict[int, tuple[int, int]]:
    """Every process: its parent and the CPU ticks (user + system) it and its reaped children spent."""
    found: dict[int, tuple[int, int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            text = Path(entry.path, "stat").read_text()
        except OSError:
            continue
        # After the command in parentheses: state, ppid, ... utime (14), stime, cutime, cstime (17).
        fields = text[text.rindex(")") + 2 :].split()
        found[int(entry.name)] = (int(fields[1]), sum(int(value) for value in fields[11:15]))
    return found


def _tree(processes: dict[int, tuple[int, int]], roots: Iterable[int]) -> set[int]:
    members = {pid for pid in roots if pid in processes}
    grown = True
    while grown:
        children = {pid for pid, (parent, _) in processes.items() if parent in members} - members
        members |= children
        grown = bool(children)
    return members


def cpu_seconds(roots: dict[str, list[int]]) -> dict[str, float]:
    """CPU seconds spent so far by each group of processes: its roots and all their descendants, those
    already exited included (their time is in their parent's cutime and cstime once reaped)."""
    processes = _processes()
    return {
        name: sum(processes[pid][1] for pid in _tree(processes, pids)) / CLOCK_TICKS
        for name, pids in roots.items()
    }


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def worker_pids(started: list[Server]) -> list[int]:
    """The processes that serve requests: each process itself, or with `--workers` its spawned workers."""
    processes = _processes()
    workers = []
    for server in started:
        children = sorted(_tree(processes, [server.pid]) - {server.pid})
        spawned = [pid for pid in children if b"spawn_main" in Path(f"/proc/{pid}/cmdline").read_bytes()]
        workers += spawned or [server.pid]
    return workers


def revision() -> str:
    """The commit measured, and whether the service's code differs from it."""
    git = shutil.which("git")
    if git is None:
        return "commit unknown"

    def run(*arguments: str) -> str:
        # The command is git, found on the PATH, and fixed arguments.
        done = subprocess.run([git, *arguments], capture_output=True, text=True, check=True)  # noqa: S603
        return done.stdout.strip()

    try:
        commit = run("rev-parse", "--short", "HEAD")
        changed = run("status", "--porcelain", "--", "service", "mappings", "migrations")
    except (OSError, subprocess.CalledProcessError):
        return "commit unknown"
    return f"commit {commit}" + (" with uncommitted changes to the service" if changed else "")


def machine() -> str:
    model = "unknown CPU"
    with open("/proc/cpuinfo") as cpuinfo:
        for line in cpuinfo:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    with open("/proc/meminfo") as meminfo:
        memory = int(meminfo.readline().split()[1]) / 1024 / 1024
    return f"{os.cpu_count()} CPUs ({model}), {memory:.1f} GiB memory"


# --- rounds ------------------------------------------------------------------------------------------


@dataclass
class Side:
    """One app under test: its servers, its path prefix, and the ids of its stored responses."""

    name: str
    started: list[Server]
    prefix: str
    database: str
    ids: list[str] = field(default_factory=list)

    @property
    def bases(self) -> list[str]:
        return [server.base for server in self.started]

    @property
    def pids(self) -> list[int]:
        return [server.pid for server in self.started]


@dataclass(frozen=True)
class Round:
    requests: int
    seconds: float
    latencies: list[float]
    app_cpu: float
    postgres_cpu: float
    client_cpu: float
    # PostgreSQL sessions opened on the side's database during the round (pg_stat_database).
    sessions: int

    @property
    def throughput(self) -> float:
        return self.requests / self.seconds

    def percentile(self, share: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))] * 1000

    def per_request(self, seconds: float) -> float:
        return seconds / self.requests * 1000


Send = Callable[[httpx.AsyncClient, int], Awaitable[None]]


def operation(name: str, side: Side, body: bytes) -> Send:
    """The request of operation `name` to `side`; `count` varies the id read."""
    prefix = side.prefix

    async def check(response: httpx.Response, expected: int) -> None:
        if response.status_code != expected:
            raise RuntimeError(f"{side.name} {name}: {response.status_code} {response.text[:500]}")

    async def create(http: httpx.AsyncClient, count: int) -> None:
        await check(await http.post(f"{prefix}/QuestionnaireResponse", content=body), 201)

    async def read(http: httpx.AsyncClient, count: int) -> None:
        resource_id = side.ids[count % len(side.ids)]
        await check(await http.get(f"{prefix}/QuestionnaireResponse/{resource_id}"), 200)

    async def search(http: httpx.AsyncClient, count: int) -> None:
        url = f"{prefix}/QuestionnaireResponse?subject=Patient/{SEARCH_PATIENT}"
        await check(await http.get(url), 200)

    async def health(http: httpx.AsyncClient, count: int) -> None:
        await check(await http.get("/health"), 200)

    sends: dict[str, Send] = {"create": create, "read": read, "search": search, "health": health}
    return sends[name]


async def _sessions(monitor: asyncpg.Connection, database: str) -> int:
    await monitor.execute("SELECT pg_stat_clear_snapshot()")
    opened = await monitor.fetchval("SELECT sessions FROM pg_stat_database WHERE datname = $1", database)
    return int(opened or 0)


async def run_round(
    side: Side,
    send: Send,
    *,
    clients: int,
    seconds: float,
    headers: dict[str, str],
    postmaster: int,
    monitor: asyncpg.Connection,
) -> Round:
    """`clients` closed-loop clients for `seconds`, after two unmeasured requests each (which open their
    connections)."""
    https = [
        httpx.AsyncClient(
            base_url=side.bases[number % len(side.bases)],
            headers=headers,
            timeout=120,
            limits=httpx.Limits(max_connections=1, max_keepalive_connections=1),
        )
        for number in range(clients)
    ]
    latencies: list[float] = []
    try:
        await asyncio.gather(
            *(send(http, number + count) for number, http in enumerate(https) for count in (0, 1))
        )
        groups = {"app": side.pids, "postgres": [postmaster]}
        sessions_before = await _sessions(monitor, side.database)
        before = cpu_seconds(groups)
        client_before = time.process_time()
        started = time.perf_counter()
        deadline = started + seconds

        async def client(http: httpx.AsyncClient, number: int) -> None:
            count = number
            while time.perf_counter() < deadline:
                sent = time.perf_counter()
                await send(http, count)
                latencies.append(time.perf_counter() - sent)
                count += 1

        await asyncio.gather(*(client(http, number) for number, http in enumerate(https)))
        elapsed = time.perf_counter() - started
        client_cpu = time.process_time() - client_before
        after = cpu_seconds(groups)
        sessions_after = await _sessions(monitor, side.database)
    finally:
        await asyncio.gather(*(http.aclose() for http in https))
    return Round(
        requests=len(latencies),
        seconds=elapsed,
        latencies=latencies,
        app_cpu=after["app"] - before["app"],
        postgres_cpu=after["postgres"] - before["postgres"],
        client_cpu=client_cpu,
        sessions=sessions_after - sessions_before,
    )


# --- summary -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Figures:
    """Medians over the rounds of one side, operation and concurrency."""

    throughput: float
    p50: float
    p99: float
    cpu: float
    app_cpu: float
    postgres_cpu: float
    client_cpu: float
    sessions: float

    @classmethod
    def of(cls, rounds: list[Round]) -> Figures:
        def median(values: Iterable[float]) -> float:
            return statistics.median(list(values))

        return cls(
            throughput=median(r.throughput for r in rounds),
            p50=median(r.percentile(0.50) for r in rounds),
            p99=median(r.percentile(0.99) for r in rounds),
            cpu=median(r.per_request(r.app_cpu + r.postgres_cpu) for r in rounds),
            app_cpu=median(r.per_request(r.app_cpu) for r in rounds),
            postgres_cpu=median(r.per_request(r.postgres_cpu) for r in rounds),
            client_cpu=median(r.per_request(r.client_cpu) for r in rounds),
            sessions=median(r.sessions / r.requests for r in rounds),
        )


def table(results: dict[tuple[str, int], tuple[Figures, Figures]]) -> list[str]:
    lines = [
        "| operation | clients | service req/s | floor req/s | service / floor | p50 service / floor (ms) "
        "| p99 service / floor (ms) | CPU/req service (app + PostgreSQL) | CPU/req floor | client CPU/req "
        "service / floor |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for (name, clients), (ours, theirs) in results.items():
        lines.append(
            f"| {LABELS[name]} | {clients} | {ours.throughput:,.0f} | {theirs.throughput:,.0f} "
            f"| {ours.throughput / theirs.throughput:.2f} | {ours.p50:.1f} / {theirs.p50:.1f} "
            f"| {ours.p99:.1f} / {theirs.p99:.1f} "
            f"| {ours.cpu:.2f} ms ({ours.app_cpu:.2f} + {ours.postgres_cpu:.2f}) "
            f"| {theirs.cpu:.2f} ms ({theirs.app_cpu:.2f} + {theirs.postgres_cpu:.2f}) "
            f"| {ours.client_cpu:.2f} / {theirs.client_cpu:.2f} ms |"
        )
    return lines


def goals(results: dict[tuple[str, int], tuple[Figures, Figures]]) -> list[str]:
    lines = []
    for name in OPERATIONS:
        levels = sorted(clients for operation_name, clients in results if operation_name == name)
        if not levels:
            continue
        ratios = [results[name, c][0].throughput / results[name, c][1].throughput for c in levels]
        verdict = "met" if all(r >= RATIO_GOALS[name] for r in ratios) else "NOT met"
        shown = ", ".join(f"{r:.2f} at {c}" for r, c in zip(ratios, levels, strict=True))
        lines.append(f"- {name}: service / floor {shown} (goal >= {RATIO_GOALS[name]:.2f}): {verdict}")
        if name in CPU_GOALS:
            cpus = [results[name, c][0].cpu for c in levels]
            verdict = "met" if all(cpu <= CPU_GOALS[name] for cpu in cpus) else "NOT met"
            shown = ", ".join(f"{cpu:.2f} ms at {c}" for cpu, c in zip(cpus, levels, strict=True))
            lines.append(f"- {name}: CPU per request {shown} (goal <= {CPU_GOALS[name]} ms): {verdict}")
    return lines


# --- the run -----------------------------------------------------------------------------------------


async def prepare(
    service: Side, floor_side: Side, headers: dict[str, str], floor_url: str
) -> tuple[bytes, dict[str, int]]:
    """The floor's table, the two Patients, 10 responses of the searched Patient on each side; returns the
    body of the creates and the size of each answer."""
    connection = await asyncpg.connect(dsn(floor_url))
    for statement in floor.SCHEMA:
        await connection.execute(statement)
    await connection.close()
    body = orjson.dumps(inventory_response(CREATE_PATIENT))
    matching = orjson.dumps(inventory_response(SEARCH_PATIENT))
    sizes: dict[str, int] = {"request body": len(body)}
    for side in (service, floor_side):
        async with httpx.AsyncClient(base_url=side.bases[0], headers=headers, timeout=60) as http:
            if side is service:
                for patient in (SEARCH_PATIENT, CREATE_PATIENT):
                    resource = {"resourceType": "Patient", "id": patient, "name": [{"family": "Rivera"}]}
                    stored = await http.put(f"/fhir/Patient/{patient}", content=orjson.dumps(resource))
                    stored.raise_for_status()
            for _ in range(MATCHES):
                created = await http.post(f"{side.prefix}/QuestionnaireResponse", content=matching)
                if created.status_code != 201:
                    raise RuntimeError(f"{side.name} create: {created.status_code} {created.text[:1000]}")
                side.ids.append(created.json()["id"])
            found = await http.get(f"{side.prefix}/QuestionnaireResponse?subject=Patient/{SEARCH_PATIENT}")
            found.raise_for_status()
            entries = len(found.json().get("entry", []))
            if entries != MATCHES:
                raise RuntimeError(f"{side.name} search: {entries} hits, not {MATCHES}")
            read = await http.get(f"{side.prefix}/QuestionnaireResponse/{side.ids[0]}")
            read.raise_for_status()
            sizes[f"{side.name} read"] = len(read.content)
            sizes[f"{side.name} search"] = len(found.content)
    return body, sizes


async def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a check of the setup: 1 round of 1 s each")
    parser.add_argument("--seconds", type=float, default=None, help="measured seconds per round (3)")
    parser.add_argument("--repetitions", type=int, default=None, help="rounds per side and figure (3)")
    parser.add_argument("--clients", default="1,8,32", help="concurrency levels, comma-separated")
    parser.add_argument("--operations", default=",".join(OPERATIONS), help="comma-separated")
    parser.add_argument(
        "--processes", type=int, default=os.cpu_count() or 1, help="processes per app (default: one per CPU)"
    )
    parser.add_argument(
        "--shared-socket",
        action="store_true",
        help="one uvicorn with --workers N per app instead of N processes with a port each",
    )
    options = parser.parse_args()
    seconds = options.seconds or (1.0 if options.quick else 3.0)
    repetitions = options.repetitions or (1 if options.quick else 3)
    levels = [int(level) for level in options.clients.split(",")]
    names = [name for name in options.operations.split(",") if name]
    unknown = set(names) - set(OPERATIONS)
    if unknown:
        parser.error(f"unknown operations: {sorted(unknown)}")

    load_start = os.getloadavg()
    print(f"# load average at start: {' '.join(f'{v:.2f}' for v in load_start)}", flush=True)
    began = time.perf_counter()
    database_url, version = await fresh_database(DATABASE)
    floor_url, _ = await fresh_database(FLOOR_DATABASE, migrate=False)
    postmaster = postmaster_pid()
    headers = {"Content-Type": "application/fhir+json", **auth_headers()}
    count, workers = (1, options.processes) if options.shared_socket else (options.processes, 1)
    # The service as users run it: the IPT content loaded at start (unchanged content writes nothing).
    content = {"IPT_FHIR_LOAD_CONTENT_ON_START": "true"}
    async with (
        servers(database_url, count, environment=content, workers=workers, start_timeout=180) as ours,
        servers(dsn(floor_url), count, app=f"{floor.__name__}:create_app", workers=workers) as floor_servers,
        servers(dsn(floor_url), count, app=f"{floor.__name__}:create_health_app", workers=workers) as bare,
    ):
        service = Side("service", ours, "/fhir", DATABASE)
        floor_side = Side("floor", floor_servers, "", FLOOR_DATABASE)
        starlette = Side("starlette", bare, "", FLOOR_DATABASE)
        body, sizes = await prepare(service, floor_side, headers, floor_url)
        print(f"# answer sizes (bytes): {sizes}", flush=True)
        monitor = await asyncpg.connect(dsn(database_url))

        async def measure(side: Side, send: Send, clients: int, seconds: float) -> Round:
            return await run_round(
                side,
                send,
                clients=clients,
                seconds=seconds,
                headers=headers,
                postmaster=postmaster,
                monitor=monitor,
            )

        results: dict[tuple[str, int], tuple[Figures, Figures]] = {}
        for name in names:
            other = starlette if name == "health" else floor_side
            pair = (service, other)
            sends = {side.name: operation(name, side, body) for side in pair}
            # Unmeasured: the first requests of a process fill its caches.
            for side in pair:
                await measure(side, sends[side.name], 8, min(seconds, 1.0))
            for clients in levels:
                rounds: dict[str, list[Round]] = {side.name: [] for side in pair}
                for repetition in range(repetitions):
                    for side in pair if repetition % 2 == 0 else pair[::-1]:
                        rounds[side.name].append(await measure(side, sends[side.name], clients, seconds))
                ours_figures = Figures.of(rounds[service.name])
                theirs_figures = Figures.of(rounds[other.name])
                results[name, clients] = (ours_figures, theirs_figures)
                print(
                    f"# {name} x{clients}: service {ours_figures.throughput:,.0f} req/s "
                    f"({ours_figures.cpu:.2f} ms CPU, {ours_figures.sessions * 1000:.0f} PostgreSQL sessions "
                    f"opened per 1,000), {other.name} {theirs_figures.throughput:,.0f} req/s "
                    f"({theirs_figures.cpu:.2f} ms CPU, {theirs_figures.sessions * 1000:.0f} per 1,000)",
                    flush=True,
                )
        await monitor.close()
        service_rss = [rss_mib(pid) for pid in worker_pids(ours)]
        floor_rss = [rss_mib(pid) for pid in worker_pids(floor_servers)]

    load_end = os.getloadavg()
    command = shlex.join(["python", "-m", "benchmarks.requests", *sys.argv[1:]])
    mode = (
        f"one uvicorn with --workers {workers} per app"
        if options.shared_socket
        else f"{count} uvicorn process(es) per app, each on its own port"
    )
    print()
    print(f"Machine: {machine()}; PostgreSQL {version} (embedded); Python {platform.python_version()}")
    print(f"Command: `{command}`; {mode}; {repetitions} round(s) of {seconds:g} s per side and figure")
    print(f"Code: {revision()}")
    print(f"Load average: {' '.join(f'{v:.2f}' for v in load_start)} at start, ", end="")
    print(f"{' '.join(f'{v:.2f}' for v in load_end)} at end; {time.perf_counter() - began:.0f} s in all")
    print()
    print("\n".join(table(results)))
    print()
    opened = ", ".join(
        f"{name} x{clients} {ours.sessions * 1000:.0f}" for (name, clients), (ours, _) in results.items()
    )
    print(f"PostgreSQL sessions the service opened per 1,000 requests: {opened}")
    print(f"RSS per service worker at the end: {', '.join(f'{m:.0f} MiB' for m in service_rss)}; ", end="")
    print(f"per floor worker: {', '.join(f'{m:.0f} MiB' for m in floor_rss)}")
    print()
    print("\n".join(goals(results)))


if __name__ == "__main__":
    try:
        import uvloop
    except ImportError:  # pragma: no cover
        asyncio.run(main())
    else:
        # The client shares the machine with the servers: the cheaper its event loop, the better.
        uvloop.run(main())
