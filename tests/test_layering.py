"""DESIGN.md's layering rules: core imports no service package; the API imports neither torch nor
the worker; the dashboard talks to the API over HTTP only."""

import ast
from pathlib import Path

CORE = Path(__file__).resolve().parents[1] / "core"


def test_core_imports_no_service_package():
    offenders = []
    for path in CORE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            offenders += [f"{path.name}: {n}" for n in names if n.split(".")[0] in ("api", "worker", "dashboard")]
    assert not offenders


def test_specs_are_torch_free():
    import subprocess
    import sys

    code = "import sys, core.specs, core.presets, core.study; assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_importing_the_api_imports_neither_torch_nor_the_worker():
    import subprocess
    import sys

    code = (
        "import sys, api.main; api.main.create_app(); "
        "assert 'torch' not in sys.modules, 'torch'; assert 'diffusers' not in sys.modules, 'diffusers'; "
        "assert not any(m == 'worker' or m.startswith('worker.') for m in sys.modules), 'worker'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_dashboard_and_api_import_no_forbidden_packages():
    root = CORE.parent
    for package, forbidden in (("api", ("worker", "torch")), ("dashboard", ("api", "worker", "torch"))):
        for path in (root / package).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
                if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                    names = [node.module]
                assert not [n for n in names if n.split(".")[0] in forbidden], (path, names)
                if package == "dashboard":  # at most the spec models from core
                    assert not [n for n in names if n.startswith("core") and n != "core.specs"], (path, names)
