"""The architecture the README's Layout section describes holds: which folder may
import what, read from the source (docs/architecture.md)."""
import ast
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit
REPO = Path(__file__).resolve().parent.parent
HOST_MODULES = {"comfy", "comfy_api", "comfy_extras", "nodes", "folder_paths", "server", "execution"}
HARNESS = {"harness", "tests", "tools", "benchmarks"}


def python_files(*folders):
    for folder in folders:
        yield from sorted((REPO / folder).rglob("*.py"))


def imports(path: Path) -> set:
    """The modules `path` imports: dotted names, and "." plus the first package named
    for relative imports ("..nodes" from hooks/ gives ".nodes")."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level == 0:
                found.add(node.module)
            elif node.level == 1:
                found.add(".")            # a sibling in the same package
            else:
                module = (node.module or "").split(".")[0]
                found |= {f".{module}"} if module else {f".{alias.name}" for alias in node.names}
    return found


def offenders(paths, forbidden) -> dict:
    """{file: the imports of it that are, or lie inside, a forbidden module}."""
    def is_forbidden(module):
        return any(module == name or module.startswith(name + ".") for name in forbidden)
    return {str(path.relative_to(REPO) if path.is_relative_to(REPO) else path.name): sorted(bad) for path in paths
            if (bad := {module for module in imports(path) if is_forbidden(module)})}


# What ComfyUI loads: the package and everything it imports. demo/run.py and
# demo/train.py are commands (make demo, training), run from the repository.
EXTENSION = [REPO / "__init__.py", *python_files("analysis", "hooks", "nodes"), REPO / "demo/__init__.py",
             REPO / "demo/model.py", REPO / "demo/scenes.py"]


def test_the_pure_package_imports_no_comfyui_and_nothing_of_the_extension_outside_it():
    assert offenders(python_files("analysis"), HOST_MODULES | {".hooks", ".nodes", ".demo", "concept_attention"}
                     | HARNESS) == {}


def test_hooks_know_model_families_not_nodes():
    assert offenders(python_files("hooks"), {".nodes", ".demo", "nodes", "comfy_api.latest"} | HARNESS) == {}


def test_nodes_leave_model_internals_to_hooks_and_the_demo_model_knows_no_nodes():
    assert offenders(python_files("nodes"), {"comfy.ldm"}) == {}
    assert offenders(python_files("demo"), {".nodes", "comfy_api.latest"}) == {}


def test_the_extension_never_imports_the_test_and_tool_harness():
    assert offenders(EXTENSION, HARNESS) == {}


def test_the_extension_never_imports_the_evaluation_or_its_packages():
    assert offenders(EXTENSION, {"evaluation", "ray", "h5py", "sklearn"}) == {}


def edits_sys_path(path: Path) -> bool:
    """Whether `path` calls sys.path.insert, append or extend."""
    return any(isinstance(node, ast.Attribute) and node.attr in {"insert", "append", "extend"}
               and isinstance(node.value, ast.Attribute) and node.value.attr == "path"
               and isinstance(node.value.value, ast.Name) and node.value.value.id == "sys"
               for node in ast.walk(ast.parse(path.read_text(), str(path))))


def test_sys_path_is_edited_in_one_place_only():
    edits = [str(path.relative_to(REPO)) for path in sorted(REPO.rglob("*.py"))
             if ".git" not in path.parts and edits_sys_path(path)]
    assert edits == ["harness/host.py"]


def test_the_readers_see_what_the_checks_rely_on(tmp_path):
    """The readers behind the checks above see host imports, relative imports and
    sys.path edits, so that an empty offender list means something."""
    source = tmp_path / "module.py"
    source.write_text("import sys\nimport comfy.model_management\nfrom ..nodes import x\nfrom . import maths\n"
                      "from .. import hooks\nfrom harness import host\nsys.path.insert(0, '.')\n")
    assert imports(source) == {"sys", "comfy.model_management", ".nodes", ".", ".hooks", "harness"}
    assert offenders([source], {"comfy", ".nodes"}) == {"module.py": [".nodes", "comfy.model_management"]}
    assert edits_sys_path(source)
