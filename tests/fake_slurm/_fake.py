"""Shared state of the stand-in SLURM commands (tests/fake_slurm/): no cluster is reachable
in tests, so these scripts record what snakemake-executor-plugin-slurm calls and run each
submitted job at once, on this machine.

State lives in $FAKE_SLURM_DIR: `calls.jsonl` (one {"command", "argv"} line per call) and
`jobs/<id>.json` ({"id", "name", "state"}) for sacct/squeue to report.
"""

import fcntl
import json
import os
import sys
from pathlib import Path


def state_dir() -> Path:
    path = Path(os.environ.get("FAKE_SLURM_DIR", "fake_slurm_state"))
    (path / "jobs").mkdir(parents=True, exist_ok=True)
    return path


def record_call(command: str, argv: list[str], **extra) -> None:
    line = json.dumps({"command": command, "argv": argv, **extra}) + "\n"
    with open(state_dir() / "calls.jsonl", "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        f.write(line)


def next_job_id() -> int:
    with open(state_dir() / "next_id", "a+") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        f.seek(0)
        job_id = int(f.read().strip() or 1000)
        f.seek(0)
        f.truncate()
        f.write(str(job_id + 1))
    return job_id


def write_job(job_id: int, name: str, state: str) -> None:
    path = state_dir() / "jobs" / f"{job_id}.json"
    path.write_text(json.dumps({"id": job_id, "name": name, "state": state}))


def jobs(name: str | None = None) -> list[dict]:
    found = [json.loads(p.read_text()) for p in sorted((state_dir() / "jobs").glob("*.json"))]
    return [j for j in found if name is None or j["name"] == name]


def option(argv: list[str], *names: str) -> str | None:
    """The value of `--name value`, `--name=value` or `-n value` in argv."""
    for i, arg in enumerate(argv):
        for name in names:
            if arg == name and i + 1 < len(argv):
                return argv[i + 1]
            if name.startswith("--") and arg.startswith(name + "="):
                return arg[len(name) + 1:]
    return None


def main_record_only(command: str, output: str = "") -> None:
    record_call(command, sys.argv[1:])
    sys.stdout.write(output)
