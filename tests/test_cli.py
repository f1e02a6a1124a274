"""The `ipt-fhir` command, run as a newcomer would: separate processes, real PostgreSQL."""

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

CLI = [sys.executable, "-m", "service.cli"]


def _env(**overrides: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "PORT", "DATA_DIR")}
    env.update(overrides)
    return env


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class TestMigrateAndLoad:
    def test_migrate_then_load_content_twice(self, worker_database_url: str) -> None:
        env = _env(DATABASE_URL=worker_database_url)
        migrated = subprocess.run([*CLI, "migrate"], env=env, capture_output=True, text=True, timeout=120)
        assert migrated.returncode == 0, migrated.stderr
        assert "up to date" in migrated.stdout
        subprocess.run(
            [*CLI, "load-content"], env=env, capture_output=True, text=True, timeout=120, check=True
        )
        again = subprocess.run([*CLI, "load-content"], env=env, capture_output=True, text=True, timeout=120)
        assert again.returncode == 0, again.stderr
        assert "0 created" in again.stdout


@pytest.mark.slow
class TestServeOnEmbeddedPostgres:
    def test_fresh_data_dir_serves_and_keeps_data_across_restarts(self, tmp_path: Path) -> None:
        data_dir = tmp_path / "data"
        port = _free_port()
        env = _env(DATA_DIR=str(data_dir), PORT=str(port))
        base = f"http://127.0.0.1:{port}/fhir"

        log = tmp_path / "serve.log"

        def start() -> subprocess.Popen[bytes]:
            with log.open("ab") as output:
                process = subprocess.Popen([*CLI, "serve"], env=env, stdout=output, stderr=output)
            deadline = time.monotonic() + 90
            while time.monotonic() < deadline:
                try:
                    if httpx.get(f"{base}/metadata", timeout=2).status_code == 200:
                        return process
                except httpx.TransportError:
                    time.sleep(0.3)
                assert process.poll() is None, log.read_text()
            process.kill()
            raise AssertionError("the service did not answer within 90 s")

        server = start()
        try:
            minted = subprocess.run(
                [*CLI, "token", "--scope", "system/*.cruds"],
                env=env,
                capture_output=True,
                text=True,
                timeout=60,
            )
            assert minted.returncode == 0, minted.stderr
            # The development secret lives under DATA_DIR, so the token outlives a restart.
            auth = {"Authorization": f"Bearer {minted.stdout.strip()}"}
            patient_body = {"resourceType": "Patient", "name": [{"family": "Persistent"}]}
            fhir_json = {"Content-Type": "application/fhir+json"}
            assert httpx.post(f"{base}/Patient", json=patient_body, headers=fhir_json).status_code == 401
            created = httpx.post(f"{base}/Patient", json=patient_body, headers={**fhir_json, **auth})
            assert created.status_code == 201, created.text
            patient_id = created.json()["id"]
            worksheets = httpx.get(f"{base}/Questionnaire/phq-9-1.0.0", headers=auth)
            assert worksheets.status_code == 200
        finally:
            server.terminate()
            server.wait(timeout=30)
        assert (data_dir / "postgres" / "PG_VERSION").exists()
        # Stopped with the service: PostgreSQL removes its pid file when it shuts down cleanly.
        assert not (data_dir / "postgres" / "postmaster.pid").exists()
        server = start()
        try:
            kept = httpx.get(f"{base}/Patient/{patient_id}", headers=auth)
            assert kept.json()["name"][0]["family"] == "Persistent"
        finally:
            server.terminate()
            server.wait(timeout=30)
        assert not (data_dir / "postgres" / "postmaster.pid").exists()
