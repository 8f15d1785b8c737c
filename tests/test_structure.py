"""The shape of the code: imports follow the layers in STRUCTURE.md, and functions stay short or say why."""

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "mlkiln"

#: the layers of STRUCTURE.md: a module imports only modules of lower layers (and the package for __version__)
LAYERS = {
    0: {"errors", "pipeline", "least_squares"},
    1: {"jsonio", "atomic", "options", "drift", "monitor", "leakage", "cluster", "synthetic", "workers"},
    2: {"card"},
    3: {"data", "schema", "metrics", "compiled", "summary", "examples"},
    4: {"tuning", "bundle", "train_script", "report", "understand", "scoring"},
    5: {"selection", "predict", "drift_report"},
    6: {"workflow", "serve", "export"},
    7: {"cli"},
    8: {"__main__"},
}
LAYER = {module: layer for layer, modules in LAYERS.items() for module in modules}
#: narrower rules than the layers allow
ONLY = {
    "report": {"card", "metrics", "jsonio", "atomic", "summary", "options"},  # the report reads the card, never a bundle or a search
    "pipeline": set(),  # embedded verbatim in train.py: scikit-learn only
    "least_squares": set(),  # likewise
}
LONG_FUNCTION_LINES = 60
WHY_LONG = "Why one long function:"


def _modules():
    for path in sorted(SRC.rglob("*.py")):
        parts = path.relative_to(SRC).with_suffix("").parts
        name = parts[0]
        if name == "__init__":
            continue
        yield name, path


def _imported(path: Path, module: str) -> set[str]:
    """mlkiln modules that ``path`` imports anywhere (top level or inside functions)."""
    depth = len(path.relative_to(SRC).parts) - 1  # 1 inside a subpackage such as report/
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level:
            if node.level == depth + 1:  # from mlkiln import x / from mlkiln.x import y
                names = [node.module.split(".")[0]] if node.module else [a.name for a in node.names]
                found.update(n for n in names if n != "__version__")
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
            found.update(n.split(".")[1] for n in names if n.startswith("mlkiln."))
    return found - {module}


def test_every_module_has_a_layer():
    assert {name for name, _ in _modules()} <= set(LAYER), "add the new module to STRUCTURE.md and LAYERS"


@pytest.mark.parametrize("module, path", list(_modules()), ids=lambda v: str(v).rsplit("/src/", 1)[-1])
def test_imports_point_down(module, path):
    imported = _imported(path, module)
    upward = sorted(m for m in imported if LAYER.get(m, 99) >= LAYER[module])
    assert not upward, f"{module} (layer {LAYER[module]}) imports {upward}: see STRUCTURE.md"
    if module in ONLY:
        assert imported <= ONLY[module], f"{module} may import only {sorted(ONLY[module])}, imports {sorted(imported)}"


def test_long_functions_say_why():
    long = []
    for _, path in _modules():
        source = path.read_text()
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                body = node.body[1:] if ast.get_docstring(node) else node.body
                lines = node.end_lineno - body[0].lineno + 1
                text = "\n".join(source.splitlines()[node.lineno - 1:node.end_lineno])
                if lines > LONG_FUNCTION_LINES and WHY_LONG not in text:
                    long.append(f"{path.name}:{node.name} ({lines} lines)")
    assert not long, f"functions over {LONG_FUNCTION_LINES} lines without a '{WHY_LONG}' comment: {long}"
