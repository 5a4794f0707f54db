"""docs/architecture.md's "Code layout" table is held to the tree.

Every module of the packages people navigate is named in its folder's rows, and every module
a row names exists: a moved, renamed or new file fails here until the page says so.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
DOC = REPO_ROOT / "docs" / "architecture.md"
PACKAGES = (
    "infra",
    "infra/build_on_deploy",
    "lambdas/launch_training",
    "training_image/contract",
    "training_image/trainer",
    "training_image/serving",
    "detrain",
)
NOT_LISTED = {"__init__.py", "__main__.py"}
GENERATED = {"detector.py"}  # written into each model folder (contract/outputs.py), not a module
CODE = re.compile(r"`([^`\s]+)`")


def layout_rows() -> list[tuple[str, str]]:
    """(the folder a row is about, the row's text) for each row of the Code layout table."""
    text = DOC.read_text(encoding="utf-8")
    section = text.split("## Code layout", 1)[1].split("\n## ", 1)[0]
    rows = []
    for line in section.splitlines():
        if not line.startswith("| `"):
            continue
        first = CODE.search(line).group(1).rstrip("/")
        folder = str(Path(first).parent) if first.endswith(".py") else first
        rows.append((folder, line))
    return rows


ROWS = layout_rows()


def rows_about(folder: str) -> str:
    return "\n".join(text for row_folder, text in ROWS if row_folder == folder)


@pytest.mark.parametrize("package", PACKAGES)
def test_every_module_is_named_in_its_folders_rows(package: str) -> None:
    text = rows_about(package)
    assert text, f"docs/architecture.md's Code layout has no row for {package}/"
    folder = REPO_ROOT / package
    missing = []
    for source in sorted(folder.rglob("*.py")):
        relative = source.relative_to(folder)
        if source.name in NOT_LISTED or "__pycache__" in relative.parts:
            continue
        if len(relative.parts) > 1 and (REPO_ROOT / package / relative.parts[0]).is_dir():
            if (folder / relative.parts[0] / "__init__.py").exists() and str(
                Path(package, relative.parts[0])
            ) in PACKAGES:
                continue  # a sub-package with rows of its own
            named = f"`{relative.parts[0]}/`" in text or f"`{relative}`" in text
        else:
            named = f"`{source.name}`" in text or f"`{package}/{source.name}`" in text
        if not named:
            missing.append(str(relative))
    assert not missing, f"{package}/: not in docs/architecture.md's Code layout: {missing}"


@pytest.mark.parametrize("package", PACKAGES)
def test_every_module_a_row_names_exists(package: str) -> None:
    stale = []
    for name in CODE.findall(rows_about(package)):
        if not name.endswith(".py") or name in GENERATED:
            continue
        candidates = [
            REPO_ROOT / package / name,
            REPO_ROOT / name,
            REPO_ROOT / "training_image" / name,
        ]
        if not any(path.is_file() for path in candidates):
            stale.append(name)
    assert not stale, f"docs/architecture.md names modules that are not in {package}/: {stale}"
