"""Meta tests over the engine's structure and the step registry (in the manner of Cloud Custodian's).

The registry's docstring / manual-command / aws_* permission checks live in test_catalog.py.
"""

from __future__ import annotations

import ast
import graphlib
import inspect
import re
from collections.abc import Iterable, Iterator
from pathlib import Path

import pytest

from runbooks.cli import main
from runbooks.registry import REGISTRY, StepDefinition, load_step_modules
from tests.conftest import REPO
from tests.support.permissions import recording

load_step_modules()
DEFINITIONS = sorted(REGISTRY.values(), key=lambda d: d.phrase)
ENGINE = REPO / "runbooks"
STEPS = REPO / "steps"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def import_time_imports(body: Iterable[ast.AST]) -> Iterator[ast.Import | ast.ImportFrom]:
    """Imports executed when the module is imported: not inside functions (deliberately lazy) nor
    under ``if TYPE_CHECKING:`` (never executed)."""
    for node in body:
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
            continue
        elif isinstance(node, ast.If) and _is_type_checking(node.test):
            yield from import_time_imports(node.orelse)
        else:  # if/else, try/except/finally, with, class bodies: all run at import
            for block in ("body", "orelse", "finalbody", "handlers"):
                yield from import_time_imports(getattr(node, block, []))


def imported_modules(node: ast.Import | ast.ImportFrom, importer: str, is_package: bool) -> list[str]:
    """Fully qualified names of what ``node`` imports: ``from . import x`` names the submodule
    ``pkg.x`` as well as the package itself."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    if node.level:
        package = importer.split(".") if is_package else importer.split(".")[:-1]
        base = ".".join(package[: len(package) - node.level + 1] + ([node.module] if node.module else []))
    else:
        base = node.module or ""
    return [base, *(f"{base}.{alias.name}" for alias in node.names)]


def engine_import_graph() -> dict[str, set[str]]:
    files = {module_name(p): p for p in ENGINE.rglob("*.py") if "__pycache__" not in p.parts}
    graph: dict[str, set[str]] = {}
    for name, path in files.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        targets = {
            target
            for node in import_time_imports(tree.body)
            for target in imported_modules(node, name, path.name == "__init__.py")
        }
        graph[name] = {t for t in targets if t in files and t != name}
    return graph


def test_engine_modules_import_each_other_without_a_cycle() -> None:
    graph = engine_import_graph()
    assert "runbooks.sdk" in graph and "runbooks.targets.aws" in graph  # the walk saw the package
    try:
        graphlib.TopologicalSorter(graph).prepare()
    except graphlib.CycleError as exc:
        cycle = exc.args[1]
        pytest.fail("import cycle among engine modules: " + " -> ".join(reversed(cycle)))


@pytest.mark.parametrize("path", sorted(STEPS.glob("*.py")), ids=lambda p: p.name)
def test_step_modules_import_only_the_sdk_from_the_engine(path: Path) -> None:
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    engine_imports: list[str] = []
    for node in ast.walk(tree):  # in functions too: a lazy import is still a dependency on the engine
        if isinstance(node, ast.Import):
            engine_imports += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module == "runbooks" and not node.level:
            engine_imports += [f"runbooks.{alias.name}" for alias in node.names]  # from runbooks import sdk
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            engine_imports.append(node.module)
    outside = sorted(m for m in engine_imports if m.split(".")[0] == "runbooks" and m != "runbooks.sdk")
    assert not outside, f"{path.name} imports {outside}; steps may import only runbooks.sdk"


def test_engine_uses_no_private_pytest_api() -> None:
    offenders = [
        f"{path.relative_to(REPO)}: {word}"
        for path in sorted(ENGINE.rglob("*"))
        if path.is_file() and "__pycache__" not in path.parts
        for word in ("_pytest", "_getobj")
        if word.encode() in path.read_bytes()
    ]
    assert not offenders, offenders


@pytest.mark.parametrize("definition", [d for d in DEFINITIONS if not d.domain.startswith("aws")], ids=lambda d: d.name)
def test_steps_outside_aws_modules_that_call_aws_declare_permissions(definition: StepDefinition) -> None:
    # test_catalog.py covers the aws_* modules; a step elsewhere may still reach AWS through its context
    if "ctx.aws" in inspect.getsource(definition.func):
        assert definition.permissions, f"{definition.name} uses ctx.aws but declares no permissions"


NUMERIC_SAMPLES = {"d": "7", "g": "2.5"}
FIELD = re.compile(r"\{(\w+)(?::([^}]*))?\}")


def sample_sentence(phrase: str) -> str:
    """The phrase with every field filled: a number for ``{n:d}``/``{x:g}``, a word otherwise."""
    return FIELD.sub(lambda m: NUMERIC_SAMPLES.get(m.group(2) or "", f"some{m.group(1)}"), phrase)


@pytest.mark.parametrize("definition", DEFINITIONS, ids=lambda d: d.name)
def test_a_sample_sentence_matches_exactly_its_own_step(definition: StepDefinition) -> None:
    sentence = sample_sentence(definition.phrase)
    matching = [d.phrase for d in REGISTRY.values() if d.matches(sentence) is not None]
    assert matching == [definition.phrase], f"{sentence!r} matches {matching}"


@pytest.mark.parametrize(("env", "exit_code"), [("sandbox", 0), ("sandbox-drifted", 1)])
def test_steps_call_aws_only_within_their_declared_permissions(env: str, exit_code: int, tmp_path: Path) -> None:
    argv = [
        "verify",
        "--config",
        str(REPO / "runbooks.toml"),
        "--env",
        env,
        "--no-history",
        "--report-dir",
        str(tmp_path),
    ]
    with recording() as recorder:
        assert main(argv) == exit_code
    assert {d.domain for d in recorder.calls.values()} >= {"aws_s3", "aws_dynamodb", "aws_fleet"}  # it saw calls
    assert not recorder.violations(), "\n".join(recorder.violations())


def test_the_sdk_is_reexported_from_the_package_without_loading_it_up_front() -> None:
    import subprocess
    import sys

    import runbooks
    from runbooks import sdk

    assert all(getattr(runbooks, name) is getattr(sdk, name) for name in sdk.__all__)
    code = "import runbooks, sys; print('runbooks.sdk' in sys.modules, 'boto3' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]
