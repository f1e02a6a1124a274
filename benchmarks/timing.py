"""Does the time of a 404 tell another patient's record from no record at all?

A token confined to patient A asks, alternately, for QuestionnaireResponses of patient B (which exist) and
for ids that were never used, as many of each: both answer 404 with the same body. This times both through
the service, in its own process (uvicorn, one worker, auth and audit on), from one client, and reports the
median, the quartiles and the difference of the medians with a bootstrap interval. Not part of `make test`:
a timing is a measurement, not an assertion (`docs/security.md`, Who sees what).

    python -m benchmarks.timing [--requests N]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import time
import uuid

import httpx

from benchmarks.harness import auth_headers, fresh_database, servers
from benchmarks.requests import inventory_response
from service.api.security import mint_token
from service.config import get_settings

_POOL = 200


def _quartiles(values: list[float]) -> tuple[float, float, float]:
    q1, q2, q3 = statistics.quantiles(values, n=4)
    return q1, q2, q3


def _median_difference_interval(a: list[float], b: list[float], rounds: int = 2000) -> tuple[float, float]:
    """A 95 % bootstrap interval of median(a) - median(b)."""
    generator = random.Random(7)
    differences = sorted(
        statistics.median(generator.choices(a, k=len(a))) - statistics.median(generator.choices(b, k=len(b)))
        for _ in range(rounds)
    )
    return differences[int(0.025 * rounds)], differences[int(0.975 * rounds)]


async def main(requests: int) -> None:
    url, _ = await fresh_database("ipt_fhir_timing")
    async with servers(url, 1, environment={"IPT_FHIR_LOAD_CONTENT_ON_START": "true"}) as started:
        base = started[0].base
        admin = {**auth_headers(), "Content-Type": "application/fhir+json"}
        async with httpx.AsyncClient(base_url=base, headers=admin) as http:
            for patient in ("a", "b"):
                answer = await http.put(
                    f"/fhir/Patient/{patient}", json={"resourceType": "Patient", "id": patient}
                )
                assert answer.status_code in (200, 201), answer.text
            # As many of B's records as ids never used, each asked for in turn: both kinds of lookup then
            # visit as many places of the index.
            foreign = []
            for _ in range(_POOL):
                created = await http.post("/fhir/QuestionnaireResponse", json=inventory_response("b"))
                assert created.status_code == 201, created.text
                foreign.append(created.json()["id"])
        unused = [str(uuid.uuid4()) for _ in range(_POOL)]
        token = mint_token(get_settings(), scope="patient/*.rs", patient="a")
        confined = {"Authorization": f"Bearer {token}"}
        timings: dict[str, list[float]] = {"another patient's": [], "never used": []}
        async with httpx.AsyncClient(base_url=base, headers=confined) as http:
            for index in range(_POOL):  # warm the connection, the token cache, the statements, the pages
                await http.get(f"/fhir/QuestionnaireResponse/{foreign[index]}")
                await http.get(f"/fhir/QuestionnaireResponse/{unused[index]}")
            for index in range(2 * requests):
                kind = "another patient's" if index % 2 == 0 else "never used"
                pool = foreign if kind == "another patient's" else unused
                target = pool[(index // 2) % _POOL]
                started_at = time.perf_counter()
                answer = await http.get(f"/fhir/QuestionnaireResponse/{target}")
                elapsed = (time.perf_counter() - started_at) * 1000
                assert answer.status_code == 404, answer.text
                timings[kind].append(elapsed)
    print(f"{requests} requests of each kind, alternated, one client; milliseconds")
    print("| id | p25 | median | p75 |")
    print("|---|---:|---:|---:|")
    for kind, values in timings.items():
        q1, q2, q3 = _quartiles(values)
        print(f"| {kind} | {q1:.3f} | {q2:.3f} | {q3:.3f} |")
    low, high = _median_difference_interval(timings["another patient's"], timings["never used"])
    difference = statistics.median(timings["another patient's"]) - statistics.median(timings["never used"])
    print(f"\nmedian difference (another patient's - never used): {difference:.3f} ms")
    print(f"95 % bootstrap interval: [{low:.3f}, {high:.3f}] ms")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=3000, help="requests of each kind")
    arguments = parser.parse_args()
    asyncio.run(main(arguments.requests))
