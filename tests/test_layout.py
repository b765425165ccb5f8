"""The package layout follows the data flow: no import runs back up it, and no cycle.

paths -> io/ (decode) -> backbones/ -> features/ (featurizer, cache) -> heads/ -> ensemble/
-> pipeline, submission, scoring -> cli/. Every import inside skmtl is checked, the ones
inside functions (lazy imports of TensorFlow-heavy modules) included.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1] / "skmtl"

#: Group of modules -> the groups it may import (besides itself).
ALLOWED = {
    "_utils": set(),
    "io": {"_utils"},
    "backbones": {"_utils"},
    "features": {"_utils", "io", "backbones"},
    "heads": {"_utils"},  # a head sees a table of features, never images
    "finetune": {"_utils", "io", "backbones", "features", "heads", "ensemble"},
    "ensemble": {"_utils", "io", "backbones", "features", "heads"},
    "top": {"_utils", "io", "backbones", "features", "heads", "ensemble", "finetune"},
    "cli": {"_utils", "io", "backbones", "features", "heads", "ensemble", "finetune", "top"},
    "root": {"_utils", "io", "backbones", "features", "heads", "ensemble", "finetune", "top",
             "cli"},
}


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _group(module: str) -> str:
    parts = module.split(".")
    if len(parts) == 1 or parts[1] == "__main__":
        return "root"
    if parts[1] in ALLOWED:
        return parts[1]
    return "top"  # pipeline, submission, scoring, distributed, __main__


def _imports(path: Path) -> list[tuple[str, bool]]:
    """(imported skmtl module, at module level?) for every import in the file."""
    tree = ast.parse(path.read_text(), filename=str(path))
    top_level = {id(node) for node in tree.body}
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
            if node.module == "skmtl" or node.module.endswith(("skmtl.io", "skmtl.heads")):
                names += [f"{node.module}.{a.name}" for a in node.names]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        else:
            continue
        for name in names:
            if name == "skmtl" or name.startswith("skmtl."):
                found.append((name, id(node) in top_level))
    return found


MODULES = {_module_name(p): p for p in sorted(ROOT.rglob("*.py"))}


@pytest.mark.parametrize("module", sorted(m for m in MODULES if m != "skmtl"))
def test_imports_follow_the_data_flow(module):
    here = _group(module)
    for imported, _ in _imports(MODULES[module]):
        target = imported if imported in MODULES else imported.rsplit(".", 1)[0]
        if target not in MODULES:
            continue  # a name imported from a package, checked through the package
        there = _group(target)
        assert there == here or there in ALLOWED[here], (
            f"{module} ({here}) imports {imported} ({there}): against the data flow"
        )


def test_no_import_cycle_at_module_level():
    graph = {
        m: {i for i, top in _imports(p) if top and i in MODULES and i != m}
        for m, p in MODULES.items()
    }
    state: dict[str, int] = {}

    def visit(node: str, stack: list[str]) -> None:
        state[node] = 1
        for nxt in graph[node]:
            if state.get(nxt) == 1:
                cycle = [*stack[stack.index(nxt):], nxt]
                raise AssertionError("import cycle: " + " -> ".join(cycle))
            if nxt not in state:
                visit(nxt, [*stack, nxt])
        state[node] = 2

    for module in graph:
        if module not in state:
            visit(module, [module])


def test_modules_stay_small():
    sizes = {m: len(p.read_text().splitlines()) for m, p in MODULES.items()}
    assert max(sizes.values()) <= 450, sorted(sizes.items(), key=lambda kv: -kv[1])[:3]


def test_import_skmtl_and_the_cli_parser_leave_tensorflow_out():
    code = ("import sys, skmtl, skmtl.heads, skmtl.io, skmtl.cli; skmtl.cli.build_parser(); "
            "heavy = [m for m in ('tensorflow', 'keras', 'scikeras') if m in sys.modules]; "
            "print(heavy)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "[]"
