"""The dependency rule (docs/architecture.md), read from the code's own imports with ``ast``.

- ``contract`` (training_image/contract) imports only the standard library (and itself);
- the trainer and the Lambda import nothing from ``infra`` or ``detrain``;
- the Lambda imports nothing from ``trainer``, the model server (``serving``) nothing from
  ``trainer``, ``infra`` or ``detrain``;
- ``infra`` imports nothing from ``detrain``, ``trainer`` or ``launch_training``;
- ``detrain`` (the operator's CLI, the local runner, the rehearsal) imports ``infra``, the Lambda
  and ``contract``, and of ``trainer`` (which it runs as a process) only ``trainer.sample_data``;
  no layer imports it;
- inside the trainer, only ``trainer/families/`` compares a model family's name, and
  ``detector.py`` (shipped alone in the model) imports nothing from the project: its template,
  ``standalone_detector.py``, imports only the modules written into it, which import nothing.

Every ``import`` counts, also one inside a function.
"""

from __future__ import annotations

import ast
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Layer:
    name: str
    folder: str  # relative to the repository root
    forbidden: frozenset[str] = frozenset()  # top-level packages it must not import
    stdlib_only: bool = False  # only the standard library and the layer itself
    excepted: frozenset[str] = frozenset()  # modules of a forbidden package it may import

    def allows(self, module: str) -> bool:
        package = module.split(".")[0]
        if self.stdlib_only:
            return package in sys.stdlib_module_names or package == self.package()
        if package not in self.forbidden:
            return True
        return any(module == m or module.startswith(f"{m}.") for m in self.excepted)

    def package(self) -> str:
        return Path(self.folder).name


LAYERS = (
    Layer("contract", "training_image/contract", stdlib_only=True),
    Layer("trainer", "training_image/trainer", frozenset({"infra", "detrain"})),
    # The model server runs the model folder's detector.py, never the trainer's code.
    Layer("serving", "training_image/serving", frozenset({"infra", "detrain", "trainer"})),
    Layer("lambda", "lambdas/launch_training", frozenset({"infra", "detrain", "trainer"})),
    Layer("infra", "infra", frozenset({"detrain", "trainer", "launch_training"})),
    # detrain runs the trainer as a process; it shares the generated dataset's module only
    Layer(
        "detrain", "detrain", frozenset({"trainer"}), excepted=frozenset({"trainer.sample_data"})
    ),
)


def imported_packages(source: Path) -> dict[str, int]:
    """Top-level package -> first line importing it (relative imports stay in the package)."""
    found: dict[str, int] = {}
    for node in ast.walk(ast.parse(source.read_text(encoding="utf-8"), str(source))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        else:
            continue
        for name in names:
            found.setdefault(name.split(".")[0], node.lineno)
    return found


def imported_names(source: Path) -> list[tuple[str, int]]:
    """Each absolute import as (dotted name, line): ``from a import b`` names ``a.b``."""
    found = []
    for node in ast.walk(ast.parse(source.read_text(encoding="utf-8"), str(source))):
        if isinstance(node, ast.Import):
            found += [(alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found += [(f"{node.module}.{alias.name}", node.lineno) for alias in node.names]
    return sorted(found, key=lambda name_line: name_line[1])


def violations(root: Path, layer: Layer) -> list[str]:
    """Each import that breaks the layer's rule, as ``path:line imports package`` (the first
    such line per package and file)."""
    broken = []
    for source in sorted((root / layer.folder).rglob("*.py")):
        reported = set()
        for name, line in imported_names(source):
            package = name.split(".")[0]
            if not layer.allows(name) and package not in reported:
                reported.add(package)
                broken.append(f"{source.relative_to(root)}:{line} imports {package}")
    return broken


@pytest.mark.parametrize("layer", LAYERS, ids=lambda layer: layer.name)
def test_the_layer_keeps_the_dependency_rule(layer):
    assert (REPO_ROOT / layer.folder).is_dir()
    assert violations(REPO_ROOT, layer) == []


def test_the_checker_finds_each_kind_of_violation(tmp_path):
    files = {
        "training_image/contract/names.py": "import json\nfrom contract import sagemaker\n",
        "training_image/contract/bad.py": "import json\n\ndef f():\n    import boto3\n",
        "training_image/trainer/main.py": "from contract import names\nfrom infra import stack\n",
        "training_image/serving/app.py": "from contract import serving\nimport trainer.images\n",
        "lambdas/launch_training/h.py": "import boto3\nfrom . import x\nimport trainer.model\n",
        "infra/stack.py": "from contract.names import Env\nfrom detrain import cli\n",
        "detrain/runner.py": (
            "import infra\nfrom trainer import sample_data\n\ndef f():\n    import trainer.data\n"
        ),
    }
    for relative, text in files.items():
        (tmp_path / relative).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / relative).write_text(text)

    found = {layer.name: violations(tmp_path, layer) for layer in LAYERS}

    assert found == {
        "contract": ["training_image/contract/bad.py:4 imports boto3"],
        "trainer": ["training_image/trainer/main.py:2 imports infra"],
        "serving": ["training_image/serving/app.py:2 imports trainer"],
        "lambda": ["lambdas/launch_training/h.py:3 imports trainer"],
        "infra": ["infra/stack.py:2 imports detrain"],
        "detrain": ["detrain/runner.py:5 imports trainer"],
    }


def test_no_other_layer_imports_detrain():
    """detrain/ is the top layer: what it may import is above; nothing imports it back."""
    importers = [
        layer.name
        for layer in LAYERS
        if layer.name != "detrain" and not layer.stdlib_only and "detrain" not in layer.forbidden
    ]
    assert importers == []


def test_only_the_entry_points_import_the_cli():
    """detrain/cli.py imports the command modules; none imports it back (no import cycle)."""
    importers = []
    for source in sorted((REPO_ROOT / "detrain").glob("*.py")):
        for node in ast.walk(ast.parse(source.read_text(encoding="utf-8"))):
            modules = []
            if isinstance(node, ast.ImportFrom) and node.module:
                modules = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            elif isinstance(node, ast.Import):
                modules = [alias.name for alias in node.names]
            if "detrain.cli" in modules:
                importers.append(source.name)
    assert sorted(set(importers)) == ["__main__.py"]


def family_branches(folder: Path) -> list[str]:
    """Each comparison with a model family's name (``name == "efficientdet"``) under ``folder``,
    outside the family registry (trainer/families/) that alone may tell the families apart."""
    from contract.families import FAMILIES

    found = []
    for source in sorted(folder.rglob("*.py")):
        if "families" in source.relative_to(folder).parts:
            continue
        for node in ast.walk(ast.parse(source.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Compare):
                operands = [node.left, *node.comparators]
                if any(isinstance(o, ast.Constant) and o.value in FAMILIES for o in operands):
                    found.append(f"{source.relative_to(folder.parent)}:{node.lineno}")
    return found


def test_no_code_outside_the_registry_branches_on_a_model_family():
    """A new family is a new entry (docs/architecture.md, "Adding a model family")."""
    assert family_branches(REPO_ROOT / "training_image" / "trainer") == []


def test_the_family_branch_finder_finds_one(tmp_path):
    (tmp_path / "trainer" / "families").mkdir(parents=True)
    (tmp_path / "trainer" / "model.py").write_text('x = 1\nif name != "retinanet":\n    pass\n')
    (tmp_path / "trainer" / "families" / "a.py").write_text('ok = name == "retinanet"\n')
    assert family_branches(tmp_path / "trainer") == ["trainer/model.py:2"]


SHIPPED_ALONE_MAY_IMPORT = {"torch", "torchvision", "PIL", "numpy", "effdet"}


def test_the_shipped_detector_imports_nothing_from_the_project(tmp_path):
    """It travels inside model.tar.gz as detector.py, without the repository: the template's
    project imports are the inlined modules', and those import nothing of the project."""
    from trainer import artifacts

    trainer = REPO_ROOT / "training_image"
    inlined = [trainer / (name.replace(".", "/") + ".py") for name in artifacts.INLINED_MODULES]
    shipped = tmp_path / "detector.py"
    shipped.write_text(artifacts.detector_source())
    for source in [shipped, *inlined]:
        outside = {
            package
            for package in imported_packages(source)
            if package not in sys.stdlib_module_names and package not in SHIPPED_ALONE_MAY_IMPORT
        }
        assert outside == set(), source
    template = imported_modules(trainer / "trainer" / "standalone_detector.py")
    assert {m for m in template if m.startswith(("trainer", "contract"))} == set(
        artifacts.INLINED_MODULES
    )


def imported_modules(source: Path) -> set[str]:
    """Every module named by an ``import`` or ``from ... import`` in ``source``."""
    found = set()
    for node in ast.walk(ast.parse(source.read_text(encoding="utf-8"), str(source))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module)
    return found


def trainer_imports(folder: Path) -> list[str]:
    """Each module of the trainer imported under ``folder``, as ``file: trainer.module``."""
    found = []
    for source in sorted(folder.rglob("*.py")):
        for node in ast.walk(ast.parse(source.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module == "trainer":
                modules = [f"trainer.{alias.name}" for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                modules = [node.module]
            elif isinstance(node, ast.Import):
                modules = [alias.name for alias in node.names]
            else:
                continue
            found += [f"{source.name}: {m}" for m in modules if m.split(".")[0] == "trainer"]
    return found


def test_the_cli_imports_only_the_sample_dataset_from_the_trainer():
    """detrain/ runs the trainer as a process; it shares one module with the image, the
    generated dataset (Pillow only), which the rehearsal and the image's self-check train on."""
    imported = trainer_imports(REPO_ROOT / "detrain")
    assert imported and {line.split(": ")[1] for line in imported} == {"trainer.sample_data"}


def test_the_trainer_import_finder_finds_each_form(tmp_path):
    (tmp_path / "a.py").write_text(
        "from trainer import sample_data, model\nimport trainer.data\nfrom trainer.x import y\n"
    )
    assert trainer_imports(tmp_path) == [
        "a.py: trainer.sample_data",
        "a.py: trainer.model",
        "a.py: trainer.data",
        "a.py: trainer.x",
    ]


def coupling(tests: Path) -> list[str]:
    """Each test file that imports another file of the suite by its bare name (found through the
    folder pytest puts on ``sys.path``) or edits ``sys.path``; shared helpers live in
    ``tests.support``. A test may put its own ``tmp_path`` first (``monkeypatch`` undoes it):
    a package it wrote there is no other test's module."""
    local_modules = {source.stem for source in tests.rglob("*.py")} - {"__init__", "conftest"}
    found = []
    for source in sorted(tests.rglob("*.py")):
        where = source.relative_to(tests.parent)
        for package, line in imported_packages(source).items():
            if package in local_modules:
                found.append(f"{where}:{line} imports {package}")
        for node in ast.walk(ast.parse(source.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
                called = ast.unparse(node.func)
                own_folder = called.endswith(".syspath_prepend") and "tmp_path" in ast.unparse(
                    node.args[0] if node.args else node
                )
                edits = called.startswith("sys.path.") or called.endswith(".syspath_prepend")
                if edits and not own_folder:
                    found.append(f"{where}:{node.lineno} calls {called}")
    return found


def test_test_modules_share_helpers_through_tests_support_only():
    assert coupling(REPO_ROOT / "tests") == []


def test_the_coupling_finder_finds_both_kinds(tmp_path):
    (tmp_path / "tests" / "cli").mkdir(parents=True)
    (tmp_path / "tests" / "cli" / "world.py").write_text("X = 1\n")
    (tmp_path / "tests" / "cli" / "test_a.py").write_text(
        "import sys\nfrom world import X\nsys.path.insert(0, 'tests')\n"
    )
    (tmp_path / "tests" / "cli" / "test_b.py").write_text(
        "def test(monkeypatch, tmp_path):\n"
        "    monkeypatch.syspath_prepend('x')\n"
        "    import test_a\n"
        "    monkeypatch.syspath_prepend(str(tmp_path))\n"
        "    sys.path.extend(['y'])\n"
    )

    assert coupling(tmp_path / "tests") == [
        "tests/cli/test_a.py:2 imports world",
        "tests/cli/test_a.py:3 calls sys.path.insert",
        "tests/cli/test_b.py:3 imports test_a",
        "tests/cli/test_b.py:2 calls monkeypatch.syspath_prepend",
        "tests/cli/test_b.py:5 calls sys.path.extend",
    ]
