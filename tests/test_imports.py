"""How the package holds together: no import circle, packages import only downward, and what the
command line and a first optimizer load (start-up time)."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import optimlab

SRC = Path(optimlab.__file__).resolve().parent

#: optim → schedules → data/models → train → lab/tune → viz → commands/cli (DESIGN.md)
LAYER = {"_checks": 0, "_lazy": 0, "errors": 0, "optim": 1, "schedules": 2, "data": 3, "models": 3,
         "smoothing": 3, "train": 4, "lab": 5, "tune": 5, "viz": 6, "commands": 7, "cli": 7,
         "__main__": 8}


def _modules() -> dict[str, Path]:
    out = {}
    for path in SRC.rglob("*.py"):
        parts = list(path.relative_to(SRC.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


def _imports(path: Path, modules: dict[str, Path]) -> set[str]:
    """The optimlab modules ``path`` imports anywhere (top level, functions, TYPE_CHECKING)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("optimlab"))
        elif isinstance(node, ast.ImportFrom) and node.module and \
                node.module.startswith("optimlab"):
            for alias in node.names:
                full = f"{node.module}.{alias.name}"
                found.add(full if full in modules else node.module)
    out = set()
    for name in found:
        while name not in modules:
            name = name.rpartition(".")[0]
        out.add(name)
    return out


def test_no_import_circle() -> None:
    modules = _modules()
    graph = {m: _imports(p, modules) - {m} for m, p in modules.items()}
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done
    cycles = []

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for dep in sorted(graph[node]):
            if state.get(dep) == 1:
                cycles.append([*path[path.index(dep):], dep])
            elif dep not in state:
                visit(dep, [*path, dep])
        state[node] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])
    assert cycles == []


def test_packages_import_only_downward() -> None:
    modules = _modules()
    upward = []
    for module, path in modules.items():
        parts = module.split(".")
        if len(parts) == 1:
            continue  # the package itself re-exports from below
        own = LAYER[parts[1]]
        for dep in _imports(path, modules):
            dep_parts = dep.split(".")
            if len(dep_parts) > 1 and LAYER[dep_parts[1]] > own:
                upward.append(f"{module} -> {dep}")
    assert upward == []


def _loaded_after(code: str) -> dict[str, bool]:
    probe = (f"{code}\nimport json, sys\n"
             "print(json.dumps({m: m in sys.modules for m in ('torch', 'matplotlib', 'scipy', "
             "'sklearn', 'torch._dynamo')}))")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def test_the_command_line_starts_without_torch_matplotlib_or_scipy() -> None:
    # main([]) builds the parser with every command registered and prints the help
    loaded = _loaded_after("import io, contextlib\nfrom optimlab.cli import main\n"
                           "with contextlib.redirect_stdout(io.StringIO()):\n"
                           "    assert main([]) == 2")
    assert not any(loaded.values()), loaded


def test_listing_the_datasets_loads_neither_torch_nor_scikit_learn() -> None:
    loaded = _loaded_after("import io, contextlib\nfrom optimlab.cli import main\n"
                           "with contextlib.redirect_stdout(io.StringIO()):\n"
                           "    assert main(['datasets']) == 0\n"
                           "    assert main(['datasets', '--json']) == 0")
    assert not any(loaded.values()), loaded


def test_a_first_fit_does_not_load_the_torch_compiler() -> None:
    loaded = _loaded_after(
        "import torch\nfrom optimlab.train import Trainer\n"
        "from optimlab.train.callbacks import ModelCheckpoint\n"
        "import tempfile\n"
        "X, y = torch.randn(64, 4), torch.randint(0, 3, (64,))\n"
        "with tempfile.TemporaryDirectory() as d:\n"
        "    t = Trainer({'type': 'mlp', 'hidden': [8]}, optimizer='adam', clip_grad_norm=1.0,\n"
        "                callbacks=[ModelCheckpoint(d)], progress=False)\n"
        "    t.fit((X, y), (X, y), epochs=2, batch_size=16)\n"
        "    t.optimizer.zero_grad()\n"
        "    t.fit((X, y), (X, y), epochs=3, batch_size=16, resume=d + '/last.pt')\n")
    assert loaded["torch"] and not loaded["torch._dynamo"]
