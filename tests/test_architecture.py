"""Which way imports run (docs/architecture.md): every import statement of the two packages, read from the source.

Layers, bottom to top: ``data_prep`` (stands alone) and ``satgate_monai.networks`` (pure modelling); the task
registry and the shipped-files lookup (``satgate_monai.tasks``, ``satgate_monai.resources``); the bundles' support
code (``satgate_monai.bundle``); the tools (``infer``, ``label``, ``experiments``, ``report``, ``demo``, the package's
``__main__``). An import may only run downwards. Imports inside functions count too.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT

TOOLS = {"infer", "label", "deploy", "experiments", "report", "demo", "nnunet", "__main__"}
# what each part of satgate_monai may import of the project (tools may import every layer below them)
ALLOWED = {
    "networks": {"networks"},
    "resources": set(),
    "runtime": set(),
    "tasks": {"resources", "data_prep.tasks"},
    # __version__: the package's version string (a constant of its root module)
    "bundle": {"bundle", "networks", "tasks", "resources", "runtime", "data_prep", "__version__"},
}
# file I/O and image/DICOM libraries the pure modelling layer must not import
IO_MODULES = {"os", "io", "pathlib", "shutil", "tempfile", "glob", "json", "csv", "pickle", "nibabel", "SimpleITK",
              "pydicom", "highdicom", "PIL", "itk", "h5py", "data_prep"}


def _imports(path: Path) -> list[tuple[int, str]]:
    """``(line, dotted module)`` of every absolute import in ``path`` (``from a import b`` gives ``a`` and ``a.b``)."""
    out = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, f"{path}:{node.lineno}: relative import (the project uses absolute imports)"
            out += [(node.lineno, node.module)] + [(node.lineno, f"{node.module}.{a.name}") for a in node.names]
    return out


def _files(package: str) -> list[Path]:
    files = sorted((REPO_ROOT / package).rglob("*.py"))
    assert files, f"no Python file found in {package}"
    return files


def _part(module: str) -> str | None:
    """``satgate_monai.bundle.data`` -> ``bundle``; ``data_prep.tasks`` -> ``data_prep.tasks``; else None."""
    parts = module.split(".")
    if parts[0] == "data_prep":
        return "data_prep.tasks" if parts[:2] == ["data_prep", "tasks"] else "data_prep"
    if parts[0] == "satgate_monai":
        return parts[1] if len(parts) > 1 else "satgate_monai"
    return None


def test_data_prep_never_imports_satgate_monai():
    bad = [f"{p.relative_to(REPO_ROOT)}:{line} imports {m}" for p in _files("data_prep") for line, m in _imports(p)
           if m.split(".")[0] == "satgate_monai"]
    assert not bad, bad


def test_networks_do_no_file_io():
    bad = []
    for path in _files("satgate_monai/networks"):
        for line, module in _imports(path):
            part = _part(module)
            if module.split(".")[0] in IO_MODULES or (part and part not in ALLOWED["networks"]):
                bad.append(f"{path.relative_to(REPO_ROOT)}:{line} imports {module}")
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call):
                name = ast.unparse(node.func)
                if name in ("open", "torch.save", "torch.load", "np.save", "np.load"):
                    bad.append(f"{path.relative_to(REPO_ROOT)}:{node.lineno} calls {name}")
    assert not bad, bad


#: functions longer than this many lines (decorators excluded, docstring included) are counted ...
LONG_FUNCTION_LINES = 60
#: ... and at most this many may exist in the code that ships or measures (the phantom writers excepted)
MAX_LONG_FUNCTIONS = 10
CODE_FOLDERS = ("satgate_monai", "data_prep", "deploy", "benchmarks")


def _long_functions(paths: list[Path]) -> list[str]:
    """``file:line name (n lines)`` of every function or method over :data:`LONG_FUNCTION_LINES` lines."""
    out = []
    for path in paths:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                n = node.end_lineno - node.lineno + 1
                if n > LONG_FUNCTION_LINES:
                    where = path.relative_to(REPO_ROOT) if path.is_relative_to(REPO_ROOT) else path
                    out.append(f"{where}:{node.lineno} {node.name} ({n} lines)")
    return out


def test_few_long_functions():
    """At most 10 functions over 60 lines outside ``data_prep/phantoms`` (split a long one before adding another)."""
    paths = [p for folder in CODE_FOLDERS for p in _files(folder)
             if not p.relative_to(REPO_ROOT).as_posix().startswith("data_prep/phantoms/")]
    long = _long_functions(paths)
    assert len(long) <= MAX_LONG_FUNCTIONS, f"{len(long)} functions over {LONG_FUNCTION_LINES} lines " \
                                            f"(at most {MAX_LONG_FUNCTIONS}): {sorted(long)}"


def test_the_length_rule_counts_a_long_function(tmp_path):
    body = "".join(f"    x{i} = {i}\n" for i in range(LONG_FUNCTION_LINES))
    (tmp_path / "m.py").write_text(f"def short():\n    return 1\n\n\ndef long():\n{body}")
    assert [s.split(" ")[1] for s in _long_functions([tmp_path / "m.py"])] == ["long"]


@pytest.mark.parametrize("layer", sorted(ALLOWED))
def test_imports_only_run_downwards(layer):
    root = REPO_ROOT / "satgate_monai" / layer
    files = _files(f"satgate_monai/{layer}") if root.is_dir() else [root.with_suffix(".py")]
    bad = []
    for path in files:
        for line, module in _imports(path):
            part = _part(module)
            if part in (None, "satgate_monai"):  # the package itself: its __init__ re-exports the networks
                continue
            if part not in ALLOWED[layer] and not (part == "data_prep.tasks" and "data_prep" in ALLOWED[layer]):
                bad.append(f"{path.relative_to(REPO_ROOT)}:{line} imports {module} ({part} is not below {layer})")
    assert not bad, bad


def test_every_part_of_the_package_has_a_layer():
    parts = {p.stem if p.is_file() else p.name for p in (REPO_ROOT / "satgate_monai").iterdir()
             if (p.is_file() and p.suffix == ".py" and p.stem != "__init__") or (p / "__init__.py").is_file()}
    assert parts <= set(ALLOWED) | TOOLS, f"{sorted(parts - set(ALLOWED) - TOOLS)}: add them to a layer here and in " \
                                          "docs/architecture.md"


def test_the_rule_catches_an_upward_import(tmp_path):
    """The scan is real: a module of a lower layer importing a tool is reported."""
    bad = tmp_path / "bad.py"
    bad.write_text("def f():\n    from satgate_monai.infer.cli import main\n    return main\n")
    assert [m for _, m in _imports(bad) if _part(m) not in ALLOWED["bundle"]] == ["satgate_monai.infer.cli",
                                                                                 "satgate_monai.infer.cli.main"]


def _config_names(text: str) -> set[str]:
    import re

    return set(re.findall(r"satgate_monai(?:\.[A-Za-z_][A-Za-z0-9_]*)+", text))


def _config_violations(names: set[str]) -> list[str]:
    below_tools = {"bundle", "networks", "runtime", "tasks", "resources"}
    return sorted(n for n in names if n.split(".")[1] not in below_tools)


def test_bundle_configs_name_only_the_bundle_layer_and_below():
    """Bundle JSON configs are code of the bundle layer: they name ``satgate_monai.bundle.*`` (and the layers below
    it: networks, runtime), never a tool (``infer``, ``label``, ...)."""
    files = sorted((REPO_ROOT / "bundles").glob("*/configs/*.json"))
    assert files
    bad = {str(f.relative_to(REPO_ROOT)): v for f in files if (v := _config_violations(_config_names(f.read_text())))}
    assert not bad, f"bundle configs name tool-layer code: {bad}"
    assert _config_violations({"satgate_monai.infer.bundle.BundleRunner", "satgate_monai.bundle.CaseEngine"}) == [
        "satgate_monai.infer.bundle.BundleRunner"]  # the rule catches a tool name
