"""The package's architecture holds: layers that import only downward, no import circles, no private
name crossing a module, function-body imports only for optional or heavy libraries, a docstring per
module that names its layer, and the public API in one import.

The imports are read from the source (``ast``), function bodies included, so an import hidden inside
a function to dodge a cycle counts like any other.
"""

from __future__ import annotations

import ast
import importlib
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "mempkg"

# Layer of each subpackage: a module may import its own subpackage and lower layers only.
# estimators, models and data share a level and do not import each other: each stands on core alone.
LAYERS = {"core": 0, "estimators": 1, "models": 1, "data": 1, "studies": 2, "book": 3, "cli": 4}

# Libraries a function body may import (the rest of the package imports at the top of the module):
# optional ones (not in [project.dependencies]) and heavy ones (about a second or more to import), which
# `import mempkg` and `python -m mempkg --help` should not pay for.
LAZY = {"diffusers", "transformers", "datasets", "torchmetrics", "torchvision", "IPython", "tqdm.auto",
        "matplotlib_inline.backend_inline",
        "scipy.stats", "sklearn", "pandas", "seaborn"}

# What a user needs, one import away (the list and the rest of the estimators and adapters).
PUBLIC = ["flipd", "volume_growth", "cfg_norm", "png_size", "DDPMScoreModel", "StableDiffusion", "check_score_model",
          "EpsModel", "VPSDE", "EDMSchedule", "DiscreteVPSchedule", "weight_and_coverage", "danger_zone", "VPView"]


@dataclass(frozen=True)
class Import:
    source: str          # importing module, e.g. "mempkg.models.edm"
    target: str          # imported module, e.g. "mempkg.core.tensors"
    names: tuple         # names taken from it (empty for `import x`)
    line: int
    in_function: bool
    comment: str         # the comment on the import's last line, if any


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def imports_of(path: Path) -> list[Import]:
    text = path.read_text()
    tree = ast.parse(text)
    lines = text.splitlines()
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    in_function = set()                  # imports inside a def (top-level try/if blocks count as top level)
    for fn in ast.walk(tree):
        if isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
            in_function.update(id(n) for n in ast.walk(fn) if isinstance(n, (ast.Import, ast.ImportFrom)))
    out = []
    for node in ast.walk(tree):
        if not isinstance(node, (ast.Import, ast.ImportFrom)):
            continue
        last = lines[node.end_lineno - 1]
        comment = last.split("#", 1)[1].strip() if "#" in last else ""
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            targets = [(target, tuple(a.name for a in node.names))]
            if node.module is None or target in modules():       # `from . import laion`: a module import
                targets = [(f"{target}.{a.name}", ()) if f"{target}.{a.name}" in modules() else (target, (a.name,))
                           for a in node.names]
        else:
            targets = [(a.name, ()) for a in node.names]
        for target, names in targets:
            out.append(Import(name, target, names, node.lineno, id(node) in in_function, comment))
    return out


def internal_graph() -> dict[str, set[str]]:
    mods = modules()
    graph = {m: set() for m in mods}
    for m, p in mods.items():
        for imp in imports_of(p):
            if imp.target.startswith("mempkg"):
                graph[m].add(imp.target)
    return graph


def layer_of(module: str):
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in LAYERS or len(parts) > 2 else None   # None: the root


def find_cycle(graph: dict[str, set[str]]):
    """A list of nodes forming a cycle, or None (depth-first search, three colours)."""
    colour, stack = {}, []

    def visit(n):
        colour[n] = 1
        stack.append(n)
        for m in sorted(graph.get(n, ())):
            if colour.get(m) == 1:
                return stack[stack.index(m):] + [m]
            if colour.get(m) is None:
                found = visit(m)
                if found:
                    return found
        colour[n] = 2
        stack.pop()
        return None

    for n in sorted(graph):
        if colour.get(n) is None:
            found = visit(n)
            if found:
                return found
    return None


# -- the checks themselves, on known answers ------------------------------------------------------------

def test_find_cycle_finds_a_cycle_and_only_a_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b", "c"}, "b": {"c"}, "c": set()}) is None


def test_imports_are_read_from_function_bodies_and_relative_forms(tmp_path, monkeypatch):
    pkg = tmp_path / "mempkg" / "studies"
    pkg.mkdir(parents=True)
    (tmp_path / "mempkg" / "__init__.py").write_text("")
    (pkg / "__init__.py").write_text("")
    src = pkg / "x.py"
    src.write_text("from ..core.tensors import bcast\n\ndef f():\n    from ..book import cache  # why\n")
    monkeypatch.setattr(sys.modules[__name__], "PACKAGE", tmp_path / "mempkg")
    got = {(i.target, i.in_function, i.comment) for i in imports_of(src)}
    assert ("mempkg.core.tensors", False, "") in got
    assert ("mempkg.book", True, "why") in got


# -- the rules -----------------------------------------------------------------------------------------

def test_every_module_sits_in_a_known_layer():
    unknown = [m for m in modules() if layer_of(m) is not None and layer_of(m) not in LAYERS]
    assert not unknown, f"modules outside the layers {sorted(LAYERS)}: {unknown}; add the layer or move them"


def test_imports_run_downward_only():
    wrong = []
    for m, targets in internal_graph().items():
        here = layer_of(m)
        for t in targets:
            there = layer_of(t)
            if here is None:                          # the package root may import anything below it
                continue
            if there is None:
                wrong.append(f"{m} imports the package root {t} (import the module that defines the name)")
            elif there != here and LAYERS[there] >= LAYERS[here]:
                wrong.append(f"{m} ({here}, level {LAYERS[here]}) imports {t} ({there}, level {LAYERS[there]})")
    assert not wrong, "imports that do not run downward:\n" + "\n".join(sorted(wrong))


def test_no_import_circle_between_modules():
    cycle = find_cycle(internal_graph())
    assert cycle is None, "import circle: " + " -> ".join(cycle)


def test_no_import_circle_between_subpackages():
    graph = {}
    for m, targets in internal_graph().items():
        for t in targets:
            a, b = layer_of(m), layer_of(t)
            if a and b and a != b:
                graph.setdefault(a, set()).add(b)
    cycle = find_cycle(graph)
    assert cycle is None, "subpackages import each other in a circle: " + " -> ".join(cycle)


def test_no_private_name_crosses_a_module():
    crossing = []
    for m, p in modules().items():
        for imp in imports_of(p):
            if not imp.target.startswith("mempkg") or imp.target == m:
                continue
            private = [n for n in imp.names if n.startswith("_") and not n.startswith("__")]
            private += [imp.target] if any(part.startswith("_") and not part.startswith("__")
                                           for part in imp.target.split(".")) else []
            if private:
                crossing.append(f"{m}:{imp.line} imports {private} from {imp.target}")
    assert not crossing, "private names used across modules (make them public and document them):\n" + \
        "\n".join(crossing)


def test_function_body_imports_are_optional_or_heavy_and_say_so():
    """Function-body imports are only of optional or heavy libraries, and say so."""
    bad = []
    for m, p in modules().items():
        for imp in imports_of(p):
            if not imp.in_function:
                continue
            allowed = any(imp.target == lib or imp.target.startswith(lib + ".") for lib in LAZY)
            if imp.target.startswith("mempkg") or not allowed:
                bad.append(f"{m}:{imp.line} imports {imp.target} inside a function (import it at the top)")
            elif not imp.comment:
                bad.append(f"{m}:{imp.line} imports {imp.target} inside a function without a comment saying why")
    assert not bad, "\n".join(bad)


def test_every_module_docstring_says_what_it_holds_and_its_layer():
    missing = []
    for m, p in modules().items():
        doc = ast.get_docstring(ast.parse(p.read_text()))
        layer = layer_of(m)
        if not doc or len(doc.split()) < 5:
            missing.append(f"{m}: no docstring saying what it holds")
        elif layer is not None and not re.search(rf"\blayer: {layer}\b", doc, re.I):
            missing.append(f"{m}: the docstring does not name its layer as 'Layer: {layer}'")
    assert not missing, "\n".join(missing)


def test_every_module_imports_on_its_own():
    """Each module imports in a fresh interpreter state of the package: none relies on another being
    imported first (what an import placed inside a function used to hide)."""
    code = (
        "import importlib, sys\n"
        f"names = {sorted(modules())!r}\n"
        "failed = []\n"
        "for name in names:\n"
        "    for m in [k for k in sys.modules if k == 'mempkg' or k.startswith('mempkg.')]:\n"
        "        del sys.modules[m]\n"
        "    try:\n"
        "        importlib.import_module(name)\n"
        "    except Exception as e:\n"
        "        failed.append(f'{name}: {type(e).__name__}: {e}')\n"
        "print('\\n'.join(failed))\n"
        "sys.exit(1 if failed else 0)\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr


def test_the_public_api_is_one_import_away_and_light():
    code = ("import sys, mempkg\n"
            f"missing = [n for n in {PUBLIC!r} + list(mempkg.__all__) if not hasattr(mempkg, n)]\n"
            "heavy = sorted({m.split('.')[0] for m in sys.modules} & {'diffusers', 'transformers', 'pandas', "
            "'sklearn', 'seaborn', 'datasets', 'torchmetrics'})\n"
            "print(missing, heavy)\n"
            "sys.exit(1 if missing or heavy else 0)\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, f"missing public names, or heavy libraries imported by `import mempkg`: {r.stdout}" \
        + r.stderr


@pytest.mark.parametrize("name", PUBLIC)
def test_public_names_are_the_layered_definitions(name):
    import mempkg
    obj = getattr(mempkg, name)
    home = importlib.import_module(obj.__module__)
    assert getattr(home, name) is obj
    assert layer_of(obj.__module__) in {"core", "estimators", "models"}, \
        f"mempkg.{name} comes from {obj.__module__}, not from the estimators, models or core"
