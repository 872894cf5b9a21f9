"""DESIGN.md's layering rules as tests: core imports no service package; the contract and the store
import no torch; the API imports neither torch nor the worker; the dashboard imports nothing of
core but the contract; and no package has an import cycle."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("core", "api", "worker", "dashboard")


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path) -> list[str]:
    """Every module `path` imports, at the top or inside functions, relative imports resolved."""
    names, package = [], module_name(path) if path.name == "__init__.py" else module_name(path).rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{anchor}.{base}" if base else anchor
            names.append(base)
            names += [f"{base}.{a.name}" for a in node.names]  # `from pkg import module`
    return names


def modules(*packages: str) -> dict[str, Path]:
    return {module_name(p): p for pkg in packages for p in (ROOT / pkg).rglob("*.py")}


def test_core_imports_no_service_package():
    offenders = [
        f"{name}: {imported}"
        for name, path in modules("core").items()
        for imported in imports(path)
        if imported.split(".")[0] in ("api", "worker", "dashboard")
    ]
    assert not offenders


def _imports_torch(module_names: list[str]) -> list[str]:
    """The modules among `module_names` whose import pulls in torch (each in a fresh process)."""
    code = (
        "import importlib, sys\n"
        f"for name in {module_names!r}:\n"
        "    importlib.import_module(name)\n"
        "    if 'torch' in sys.modules:\n"
        "        print(name); break\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    return out.stdout.split()


def test_the_contract_and_the_store_import_no_torch():
    torch_free = [
        name
        for name in modules("core")
        if name.startswith(("core.contract", "core.store")) and ".migrations." not in name
    ]
    torch_free += ["core.study", "core.settings", "core.data.catalogue", "core.data.idx", "core.data.download"]
    assert len(torch_free) > 15
    for name in torch_free:  # one process per module: each must be torch-free on its own
        assert not _imports_torch([name]), f"importing {name} imports torch"


def test_importing_the_api_imports_neither_torch_nor_the_worker():
    code = (
        "import sys, api.main; api.main.create_app(); "
        "assert 'torch' not in sys.modules, 'torch'; assert 'diffusers' not in sys.modules, 'diffusers'; "
        "assert not any(m == 'worker' or m.startswith('worker.') for m in sys.modules), 'worker'"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)


def test_the_api_imports_no_worker_and_no_torch():
    for name, path in modules("api").items():
        bad = [i for i in imports(path) if i.split(".")[0] in ("worker", "torch")]
        assert not bad, (name, bad)


def test_the_dashboard_imports_only_the_contract_of_core():
    for name, path in modules("dashboard").items():
        bad = [
            i
            for i in imports(path)
            if i.split(".")[0] in ("api", "worker", "torch")
            or (i.split(".")[0] == "core" and i != "core" and not i.startswith("core.contract"))
        ]
        assert not bad, (name, bad)


def import_graph() -> dict[str, set[str]]:
    """Edges between the modules of core, api and worker (a package import is an edge to its
    `__init__`); imports inside functions count too: a lazy import cycle is still a cycle."""
    known = modules("core", "api", "worker")
    return {name: {i for i in imports(path) if i in known and i != name} for name, path in known.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan's algorithm)."""
    index, low, stack, on_stack, found, counter = {}, {}, [], set(), [], [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    sys.setrecursionlimit(10_000)
    for v in graph:
        if v not in index:
            visit(v)
    return found


def test_the_cycle_finder_finds_a_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycles_in_core_api_and_worker():
    graph = import_graph()
    assert len(graph) > 60 and graph["core.cli.main"], "the graph should see the CLI's imports"
    assert cycles(graph) == []
