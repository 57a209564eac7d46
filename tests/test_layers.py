"""The layers of the package (pyproject.toml [tool.importlinter], docs/DESIGN.md "Layers"),
checked with import-linter's own `lint-imports`, and no two modules importing each other."""
import os
import shutil
import subprocess
import sys
from pathlib import Path

import grimp

ROOT = Path(__file__).resolve().parents[1]


def lint_imports(project: Path) -> subprocess.CompletedProcess:
    """`lint-imports` of the test environment (import-linter is in the `test` extra) on the
    package and contracts in `project`."""
    beside = Path(sys.executable).with_name("lint-imports")
    command = str(beside) if beside.exists() else shutil.which("lint-imports")
    assert command, "lint-imports not found: pip install -e '.[test]' (import-linter)"
    env = {**os.environ, "PYTHONPATH": str(project)}
    return subprocess.run([command, "--no-cache"], cwd=project, env=env, capture_output=True,
                          text=True, timeout=300)


def test_the_declared_layers_hold():
    done = lint_imports(ROOT)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert "broken" in done.stdout and " 0 broken" in done.stdout


def test_an_import_from_a_lower_layer_to_a_higher_one_fails_the_check(tmp_path):
    shutil.copytree(ROOT / "mrczbench", tmp_path / "mrczbench",
                    ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    codec = tmp_path / "mrczbench" / "mrcz.py"
    codec.write_text(codec.read_text() + "\n\ndef _up():\n    from mrczbench.analysis import stats\n")
    done = lint_imports(tmp_path)
    assert done.returncode == 1
    assert "mrczbench.mrcz -> mrczbench.analysis.stats" in done.stdout


def test_no_two_modules_import_each_other():
    graph = grimp.build_graph("mrczbench")
    circles = []
    for importer in sorted(graph.modules):
        for imported in sorted(graph.find_modules_directly_imported_by(importer)):
            back = graph.find_shortest_chain(importer=imported, imported=importer)
            if back:
                circles.append(f"{importer} -> {' -> '.join(back)}")
    assert not circles, "import circles:\n" + "\n".join(circles)


def test_nothing_imports_the_public_facade():
    # mrczbench/__init__.py (load_results, run_suite) reaches into the upper floors: a module
    # importing it would import upwards (the layers contract sees only the subpackages)
    graph = grimp.build_graph("mrczbench")
    assert graph.find_modules_that_directly_import("mrczbench") == set()
