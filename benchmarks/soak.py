"""A worker's resident memory over many requests: `python -m benchmarks.soak` (`make bench-soak`).

One service process (the app in the uvicorn process itself, so its RSS is the worker's) on a fresh database,
eight closed-loop clients sending a mix that touches every cache the service keeps: reads by id of a growing
set of responses, searches by subject, creates, and tokens of different scopes (the verified-token cache),
for `--requests` requests in all (100,000 by default). The worker's RSS is printed every tenth of the run.
Not part of `make test`.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import time
from pathlib import Path

import httpx

from benchmarks.harness import fresh_database, servers
from benchmarks.requests import inventory_response
from service.api.security import mint_token
from service.config import get_settings

CLIENTS = 8
PATIENTS = 50
TOKENS = 200


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for process {pid}")


async def main(total: int) -> None:
    database_url, _ = await fresh_database("ipt_fhir_bench_soak")
    settings = get_settings()
    tokens = [
        mint_token(settings, scope="system/*.cruds", subject=f"soak-{n}", expires_in=7200)
        for n in range(TOKENS)
    ]
    environment = {"IPT_FHIR_LOAD_CONTENT_ON_START": "true"}
    async with servers(database_url, environment=environment) as started:
        server = started[0]
        headers = {"Authorization": f"Bearer {tokens[0]}", "Content-Type": "application/fhir+json"}
        async with httpx.AsyncClient(base_url=server.base, headers=headers, timeout=60) as http:
            stored: list[str] = []
            for n in range(PATIENTS):
                await http.put(f"/fhir/Patient/soak-{n}", json={"resourceType": "Patient", "id": f"soak-{n}"})
                created = await http.post("/fhir/QuestionnaireResponse", json=inventory_response(f"soak-{n}"))
                assert created.status_code == 201, created.text
                stored.append(created.json()["id"])
        print(f"RSS after start and {2 * PATIENTS} writes: {rss_mib(server.pid):.0f} MiB", flush=True)
        sent = itertools.count()
        checkpoints = {total * k // 10 for k in range(1, 11)}
        started_at = time.monotonic()

        async def client(number: int) -> None:
            async with httpx.AsyncClient(base_url=server.base, timeout=60) as http:
                while (n := next(sent)) < total:
                    token = tokens[n % TOKENS]
                    auth = {"Authorization": f"Bearer {token}", "Content-Type": "application/fhir+json"}
                    patient = f"soak-{n % PATIENTS}"
                    kind = n % 10
                    if kind == 0:
                        response = await http.post(
                            "/fhir/QuestionnaireResponse", json=inventory_response(patient), headers=auth
                        )
                        if response.status_code == 201:
                            stored.append(response.json()["id"])
                    elif kind < 4:
                        response = await http.get(
                            "/fhir/QuestionnaireResponse",
                            params={"subject": f"Patient/{patient}"},
                            headers=auth,
                        )
                    else:
                        response = await http.get(
                            f"/fhir/QuestionnaireResponse/{stored[n % len(stored)]}", headers=auth
                        )
                    assert response.status_code < 300, response.text
                    if n + 1 in checkpoints:
                        elapsed = time.monotonic() - started_at
                        print(
                            f"{n + 1:>7} requests, {elapsed:5.0f} s: RSS {rss_mib(server.pid):.0f} MiB",
                            flush=True,
                        )

        await asyncio.gather(*(client(number) for number in range(CLIENTS)))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=100_000)
    asyncio.run(main(parser.parse_args().requests))
