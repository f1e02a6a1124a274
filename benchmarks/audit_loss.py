"""What a crash costs the audit trail: the service killed (SIGKILL) under a steady stream of reads.

The AuditEvents of reads are buffered and written every `IPT_FHIR_AUDIT_FLUSH_INTERVAL` seconds (or as soon
as `IPT_FHIR_AUDIT_FLUSH_EVENTS` are pending). Each run starts the service on a fresh database, has
`--clients` clients read one Patient in a closed loop for `--seconds`, kills the server process with no
warning, then compares the reads answered with the read events on disk. It reports the reads whose event
was lost and the loss window: how long before the kill the newest event on disk was recorded, and how long
before the kill the oldest read whose event was lost was answered.

Usage: `python -m benchmarks.audit_loss [--clients 8] [--seconds 3] [--runs 5] [--interval 0.2]`
"""

from __future__ import annotations

import argparse
import asyncio
import time
from dataclasses import dataclass
from datetime import datetime

import asyncpg
import httpx

from benchmarks.harness import auth_headers, dsn, fresh_database, servers

DATABASE = "ipt_fhir_bench_audit_loss"
PATIENT = {"resourceType": "Patient", "id": "loss", "name": [{"family": "Loss", "given": ["Audit"]}]}


@dataclass(frozen=True)
class Run:
    answered: int
    stored: int
    # Seconds before the kill: when the newest event on disk was recorded, and when the oldest read whose
    # event is missing was answered (0 when none is missing).
    newest_stored: float
    oldest_lost: float

    @property
    def lost(self) -> int:
        return self.answered - self.stored


async def one_run(options: argparse.Namespace) -> Run:
    database_url, _ = await fresh_database(DATABASE)
    environment = {"IPT_FHIR_AUDIT_FLUSH_INTERVAL": str(options.interval)}
    headers = {**auth_headers(), "Content-Type": "application/fhir+json"}
    answered: list[float] = []
    async with servers(database_url, environment=environment) as [server]:
        limits = httpx.Limits(max_connections=options.clients)
        async with httpx.AsyncClient(
            base_url=server.base, headers=headers, timeout=10, limits=limits
        ) as http:
            assert (await http.put("/fhir/Patient/loss", json=PATIENT)).status_code in (200, 201)

            async def reader() -> None:
                while True:
                    try:
                        response = await http.get("/fhir/Patient/loss")
                    except httpx.HTTPError:
                        return  # the server is gone
                    if response.status_code == 200:
                        answered.append(time.time())

            readers = [asyncio.create_task(reader()) for _ in range(options.clients)]
            await asyncio.sleep(options.seconds)
            killed_at = time.time()
            server.process.kill()
            await asyncio.to_thread(server.process.wait)
            await asyncio.gather(*readers, return_exceptions=True)
    connection = await asyncpg.connect(dsn(database_url))
    try:
        rows = await connection.fetch(
            "SELECT content->>'recorded' AS recorded FROM resources"
            " WHERE resource_type = 'AuditEvent' AND content->'subtype'->0->>'code' = 'read'"
        )
    finally:
        await connection.close()
    recorded = sorted(
        datetime.fromisoformat(row["recorded"].replace("Z", "+00:00")).timestamp() for row in rows
    )
    # Reads answered before the kill; the events written are those of the earliest of them.
    answered = sorted(t for t in answered if t <= killed_at)
    stored = len(recorded)
    oldest_lost = killed_at - answered[stored] if stored < len(answered) else 0.0
    newest_stored = killed_at - recorded[-1] if recorded else float("nan")
    return Run(len(answered), stored, newest_stored, oldest_lost)


async def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--interval", type=float, default=0.2, help="IPT_FHIR_AUDIT_FLUSH_INTERVAL")
    options = parser.parse_args()
    print(f"{options.clients} clients reading for {options.seconds} s, flush interval {options.interval} s")
    print("run  answered  stored  lost  newest on disk (s before kill)  oldest lost (s before kill)")
    runs = []
    for number in range(1, options.runs + 1):
        run = await one_run(options)
        runs.append(run)
        print(
            f"{number:>3}  {run.answered:>8}  {run.stored:>6}  {run.lost:>4}  "
            f"{run.newest_stored:>30.3f}  {run.oldest_lost:>27.3f}"
        )
    print(f"most lost in a run: {max(run.lost for run in runs)} reads")
    print(f"longest loss window: {max(run.oldest_lost for run in runs):.3f} s")


if __name__ == "__main__":
    asyncio.run(main())
