"""DESIGN.md's first rule: core imports nothing from api, worker or dashboard."""

import ast
from pathlib import Path

CORE = Path(__file__).resolve().parents[2] / "core"


def test_core_imports_no_service_package():
    offenders = []
    for path in CORE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            offenders += [
                f"{path.name}: {n}"
                for n in names
                if n.split(".")[0] in ("api", "worker", "dashboard")
            ]
    assert not offenders


def test_specs_are_torch_free():
    import subprocess
    import sys

    code = "import sys, core.specs, core.presets, core.study; assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)
