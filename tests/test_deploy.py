"""The deployment files against the code: the compose services, their commands and environment
match what the code reads, and the files validate with `docker-compose config` (no engine
needed). These machines have no Docker engine, so nothing here starts a container."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from core.contract.client import ENV as CLIENT_ENV
from core.contract.kinds import JOB_KINDS
from core.settings import ENV
from dashboard.common import DASHBOARD_ENV

ROOT = Path(__file__).resolve().parents[1]
COMPOSE, GPU_NODE = ROOT / "docker-compose.yml", ROOT / "deploy" / "gpu-node.yml"
MULTI_GPU_NODE = ROOT / "deploy" / "gpu-node-multi.yml"
# Variables only the deployment files use: passwords, the image variant, the GPU a worker pins,
# the S3 credentials fsspec hands to s3fs, and the API process count of `make up`.
DEPLOY_ONLY = {
    "POSTGRES_PASSWORD",
    "REDIS_PASSWORD",
    "ROBUSTLAB_VARIANT",
    "TRAIN_GPU",
    "ROBUSTLAB_API_WORKERS",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_ENDPOINT_URL",
}
CODE_READS = set(ENV.values()) | set(DASHBOARD_ENV) | set(CLIENT_ENV)
DUMMY = {
    "POSTGRES_PASSWORD": "pw",
    "REDIS_PASSWORD": "pw",
    "ROBUSTLAB_BOOTSTRAP_KEY": "rl_" + "0" * 40,
    "DATABASE_URL": "postgresql://u:p@head/robustlab",
    "REDIS_URL": "redis://:pw@head:6379/0",
    "ARTIFACT_URL": "s3://lab/artifacts",
}


def services(path: Path) -> dict:
    return yaml.safe_load(path.read_text())["services"]


def app_services(path: Path) -> dict:
    return {n: s for n, s in services(path).items() if not str(s.get("image", "")).startswith(("redis:", "postgres:"))}


def test_compose_runs_every_part_of_the_service():
    assert set(services(COMPOSE)) == {
        "redis",
        "postgres",
        "migrate",
        "api",
        "worker-train",
        "worker-interactive",
        "dashboard",
    }
    s = services(COMPOSE)
    assert "--requirepass" in s["redis"]["command"] and "--appendonly" in s["redis"]["command"]
    for name in ("redis", "postgres", "api", "worker-train", "worker-interactive", "dashboard"):
        assert s[name]["restart"] == "unless-stopped", name
    for name in ("redis", "postgres", "api", "dashboard"):
        assert "healthcheck" in s[name] and not s[name]["healthcheck"].get("disable"), name
    assert s["api"]["volumes"] == s["worker-train"]["volumes"] == ["artifacts:/data"]  # one shared artifact volume


def test_every_variable_the_deployment_sets_is_one_the_code_reads():
    for path in (COMPOSE, GPU_NODE, MULTI_GPU_NODE):
        for name, svc in app_services(path).items():
            unknown = set(svc.get("environment", {})) - CODE_READS - DEPLOY_ONLY
            assert not unknown, f"{path.name}:{name} sets {unknown}, which no code reads"
    assert set(services(COMPOSE)["dashboard"]["environment"]) == set(DASHBOARD_ENV)


def test_env_example_lists_every_setting_and_nothing_else():
    listed = set(re.findall(r"^([A-Z][A-Z0-9_]*)=", (ROOT / ".env.example").read_text(), re.M))
    assert listed >= CODE_READS, f"missing from .env.example: {CODE_READS - listed}"
    assert listed <= CODE_READS | DEPLOY_ONLY, f"unknown in .env.example: {listed - CODE_READS - DEPLOY_ONLY}"


def test_commands_name_real_entry_points_and_cover_every_queue():
    import importlib

    from core.cli.main import build_parser

    s = services(COMPOSE)
    module, factory = s["api"]["command"][s["api"]["command"].index("--factory") + 1].split(":")
    assert callable(getattr(importlib.import_module(module), factory))
    served = set()
    for name in ("worker-train", "worker-interactive"):
        cmd = s[name]["command"]
        assert importlib.import_module(cmd[cmd.index("-A") + 1]).app.main == "robustlab"
        served.add(cmd[cmd.index("-Q") + 1])
    assert served == {kind.queue for kind in JOB_KINDS.values()}
    assert (ROOT / s["dashboard"]["command"][2]).is_file()  # streamlit run dashboard/app.py
    assert s["migrate"]["command"][0] == "robustlab"
    build_parser().parse_args(s["migrate"]["command"][1:])  # a real subcommand, or SystemExit
    gpu = s["worker-train"]["deploy"]["resources"]["reservations"]["devices"][0]
    assert gpu["capabilities"] == ["gpu"] and gpu["device_ids"] == ["${TRAIN_GPU:-0}"]  # one GPU per process
    assert services(GPU_NODE)["worker-train"]["command"] == s["worker-train"]["command"]
    multi = services(MULTI_GPU_NODE)["worker-train"]
    assert multi["deploy"]["resources"]["reservations"]["devices"][0]["count"] == "all"  # the node's GPUs, one worker
    assert multi["command"][multi["command"].index("-Q") + 1] == "train" and "ROBUSTLAB_DEVICES" in multi["environment"]


def test_the_image_is_one_multi_stage_non_root_image_with_a_healthcheck():
    text = (ROOT / "Dockerfile").read_text()
    assert text.count("FROM ") == 2 and "ARG VARIANT=cpu" in text
    assert "USER robustlab" in text and "HEALTHCHECK" in text and "dataset-fashion-mnist" in text
    assert "COPY --from=build /src/dashboard /app/dashboard" in text


@pytest.mark.skipif(shutil.which("docker-compose") is None, reason="needs Debian's docker-compose")
@pytest.mark.parametrize("path", [COMPOSE, GPU_NODE, MULTI_GPU_NODE], ids=lambda p: p.name)
def test_compose_files_validate(path, tmp_path):
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), **DUMMY}
    done = subprocess.run(
        ["docker-compose", "-f", str(path), "config", "-q"], env=env, capture_output=True, text=True, cwd=ROOT
    )
    assert done.returncode == 0, done.stderr
    missing = subprocess.run(
        ["docker-compose", "-f", str(path), "config", "-q"],
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)},
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert missing.returncode != 0 and "set " in missing.stderr  # a missing secret is a clear error
