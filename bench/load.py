"""Benchmark: status polls against the one-command run, as many clients watching their jobs.

    python -m bench.load [--clients 200] [--seconds 30] [--emulate-aws]

Starts `python -m onebox --no-worker` (the API and the drop-folder watcher on the embedded
backend, in a fresh DATA_DIR), queues one job (no worker takes it, so every poll answers with its
queue position: the job read plus the position count), then runs `--clients` aiohttp clients (one
keep-alive connection each), each polling `GET /jobs/{id}` once a second for `--seconds`.
Prints p50/p95/p99/max latency and errors.
`--emulate-aws` does the same against the moto route (`--emulate-aws`) afterwards, side by side.
The clients share the machine with the service: on a small box the figures include their cost,
which is why they are aiohttp (httpx's async client spent more CPU than the service it measured).
"""

from __future__ import annotations

import argparse
import asyncio
import io
import os
import random
import resource
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import wave
from pathlib import Path

import aiohttp
import httpx

ROOT = Path(__file__).resolve().parent.parent


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wav() -> bytes:
    out = io.BytesIO()
    with wave.open(out, "wb") as audio:
        audio.setnchannels(1)
        audio.setsampwidth(2)
        audio.setframerate(16000)
        audio.writeframes(b"\0\0" * 16000)
    return out.getvalue()


def _start(emulate: bool, data_dir: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = _free_port()
    env = {**os.environ, "DATA_DIR": str(data_dir), "LOG_LEVEL": "WARNING", "AUTH_REQUIRED": "false"}
    env.pop("AWS_ENDPOINT_URL", None)
    command = [sys.executable, "-m", "onebox", "--no-worker", "--port", str(port)]
    if emulate:
        command.append("--emulate-aws")
    log = (data_dir / "service.log").open("wb")
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                return process, url
        except httpx.HTTPError:
            time.sleep(0.3)
    process.kill()
    raise SystemExit(f"the service did not start; see {data_dir / 'service.log'}")


async def _client(url: str, until: float, latencies: list[float], errors: list[str]) -> None:
    """One client: its own keep-alive connection, one poll a second."""
    await asyncio.sleep(random.random())  # spread the clients over the second
    next_poll = time.monotonic()
    connector = aiohttp.TCPConnector(limit=1)
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=30)) as http:
        while next_poll < until:
            started = time.perf_counter()
            try:
                async with http.get(url) as answer:
                    await answer.read()
                    if answer.status != 200:
                        errors.append(str(answer.status))
            except (aiohttp.ClientError, TimeoutError) as error:
                errors.append(type(error).__name__)
            latencies.append(time.perf_counter() - started)
            next_poll += 1.0
            await asyncio.sleep(max(0.0, next_poll - time.monotonic()))


async def _measure(url: str, clients: int, seconds: float) -> tuple[list[float], list[str]]:
    answer = httpx.post(f"{url}/jobs", files={"file": ("bench.wav", _wav(), "audio/wav")}, timeout=30)
    answer.raise_for_status()
    job_url = f"{url}/jobs/{answer.json()['job_id']}"
    latencies: list[float] = []
    errors: list[str] = []
    until = time.monotonic() + seconds
    await asyncio.gather(*(_client(job_url, until, latencies, errors) for _ in range(clients)))
    return latencies, errors


def _report(
    name: str, latencies: list[float], errors: list[str], seconds: float, cpu: tuple[float, float]
) -> str:
    ms = sorted(1000 * value for value in latencies)
    quantiles = statistics.quantiles(ms, n=100)
    return (
        f"{name:10} polls {len(ms):6} ({len(ms) / seconds:4.0f}/s)  p50 {quantiles[49]:7.1f} ms  "
        f"p95 {quantiles[94]:7.1f} ms  p99 {quantiles[98]:7.1f} ms  max {ms[-1]:7.1f} ms  "
        f"errors {len(errors)}  CPU s: service {cpu[0]:.1f}, clients {cpu[1]:.1f}"
    )


def _service_cpu(supervisor: int) -> float:
    """CPU seconds used so far by the supervisor (moto runs in it with --emulate-aws) and its children."""
    total, tick = 0.0, os.sysconf("SC_CLK_TCK")
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(stat.parent.name) == supervisor or int(fields[1]) == supervisor:
            total += (int(fields[11]) + int(fields[12])) / tick
    return total


def _own_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def run(emulate: bool, clients: int, seconds: float) -> str:
    with tempfile.TemporaryDirectory(prefix="status-polls-") as scratch:
        process, url = _start(emulate, Path(scratch))
        try:
            service, own = _service_cpu(process.pid), _own_cpu()
            latencies, errors = asyncio.run(_measure(url, clients, seconds))
            cpu = (_service_cpu(process.pid) - service, _own_cpu() - own)
        finally:
            process.send_signal(signal.SIGINT)
            process.wait(timeout=60)
    return _report("moto (aws)" if emulate else "local", latencies, errors, seconds, cpu)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--clients", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--emulate-aws", action="store_true", help="also measure the moto route")
    args = parser.parse_args()
    print(
        f"{args.clients} clients, each GET /jobs/{{id}} once a second for {args.seconds:.0f} s "
        f"({os.cpu_count()} CPUs)"
    )
    print(run(False, args.clients, args.seconds), flush=True)
    if args.emulate_aws:
        print(run(True, args.clients, args.seconds), flush=True)


if __name__ == "__main__":
    main()
