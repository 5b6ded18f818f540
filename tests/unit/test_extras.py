"""Extras say who needs what: the core install is what ``import concursus_lab`` and the analysis
need; every other package is imported through ``require`` (common/optional.py), when first
needed, and named by the extra that installs it.

The install itself, into a fresh virtualenv, is tests/integration/test_install.py.
"""

from __future__ import annotations

import ast
import importlib.metadata
import re
import sys
import tomllib
from pathlib import Path

import pytest

from concursus_lab.common.optional import EXTRAS
from concursus_lab.exceptions import MissingDependency

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "concursus_lab"
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def _distribution(requirement: str) -> str:
    """``"kafka-python>=3.0,<3.1"`` -> ``"kafka-python"``; ``"a[b]"`` -> ``"a"``."""
    return re.split(r"[\s<>=!~\[;]", requirement, maxsplit=1)[0].lower().replace("_", "-")


def _extra(name: str) -> set[str]:
    """Every distribution an extra installs, following ``concursus-lab[...]`` inclusions."""
    found: set[str] = set()
    for requirement in PYPROJECT["optional-dependencies"][name]:
        if requirement.startswith("concursus-lab["):
            for inner in requirement[len("concursus-lab[") : requirement.index("]")].split(","):
                found |= _extra(inner)
        else:
            found.add(_distribution(requirement))
    return found


CORE = {_distribution(r) for r in PYPROJECT["dependencies"]}
PROVIDERS = importlib.metadata.packages_distributions()


def _providers(module: str) -> set[str]:
    return {d.lower().replace("_", "-") for d in PROVIDERS.get(module, [])}


def _imports() -> list[tuple[str, int, str, bool]]:
    """(module path, line, top-level name imported, under ``if TYPE_CHECKING:``) of every
    absolute import statement in the package."""
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        tree = ast.parse(path.read_text())
        checking: set[int] = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
                for inner in node.body:
                    checking.update(id(n) for n in ast.walk(inner))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                found.append(
                    (str(path.relative_to(ROOT)), node.lineno, name.split(".")[0],
                     id(node) in checking)
                )
    return found


#: Folders other work is changing now; their imports move to `require` once it has landed.
NOT_YET = (
    "concursus_lab/sources/cassandra/",
    "concursus_lab/sources/kafka/",
    "concursus_lab/sources/registry/",
    "concursus_lab/spark/",
)


def test_no_optional_package_is_imported_by_an_import_statement():
    # `x = require("x", needed_by=...)` instead: the error then names the extra to install
    bare = [
        f"{path}:{line}: import {name}"
        for path, line, name, checking in _imports()
        if name in EXTRAS and not checking and not path.startswith(NOT_YET)
    ]
    assert not bare, "import these through concursus_lab.common.optional.require:\n" + (
        "\n".join(bare)
    )


def test_every_other_import_is_the_standard_library_the_package_or_the_core_install():
    outside = set()
    for path, line, name, _checking in _imports():
        if name in EXTRAS or name in sys.stdlib_module_names or name == "concursus_lab":
            continue
        if not _providers(name) & CORE:
            outside.add(f"{path}:{line}: {name} ({sorted(_providers(name)) or 'not installed'})")
    assert not outside, (
        "not in the core install (pyproject.toml's dependencies): add it to an extra and "
        "common/optional.py's EXTRAS, or to the dependencies if the analysis needs it:\n"
        + "\n".join(sorted(outside))
    )


@pytest.mark.parametrize("module", sorted(EXTRAS))
def test_the_extra_named_for_a_module_installs_it(module):
    extra = EXTRAS[module]
    providers = _providers(module)
    assert providers, f"{module} is not installed here: is `.[all,test]` installed?"
    assert providers & _extra(extra), (
        f"{module} comes from {sorted(providers)}, which pip install 'concursus-lab[{extra}]' "
        f"does not install ({sorted(_extra(extra))})"
    )
    assert not providers & CORE, f"{module} is optional but in the core dependencies"


def test_all_installs_every_extra_a_user_can_name():
    users = set(PYPROJECT["optional-dependencies"]) - {"all", "test"}
    assert set(EXTRAS.values()) <= users
    for name in users:
        assert _extra(name) <= _extra("all"), name


def _required() -> list[tuple[str, str, str | None]]:
    """(path, module, extra=) of every ``require("module", ...)`` and ``lab("module")``."""
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)):
                continue
            if node.func.id not in ("require", "lab") or not node.args:
                continue
            first = node.args[0]
            if not (isinstance(first, ast.Constant) and isinstance(first.value, str)):
                continue
            extra = next((k.value for k in node.keywords if k.arg == "extra"), None)
            if node.func.id == "lab":
                extra = ast.Constant("lab")
            value = extra.value if isinstance(extra, ast.Constant) else None
            found.append((str(path.relative_to(ROOT)), first.value, value))
    return found


def test_every_require_names_a_known_optional_module_and_its_own_extra():
    calls = [(p, m, e) for p, m, e in _required() if p != "concursus_lab/common/optional.py"]
    assert len(calls) > 20  # the scan finds them
    wrong = [
        f"{p}: {m!r} extra={e!r}"
        for p, m, e in calls
        if m.split(".")[0] not in EXTRAS or e not in (None, EXTRAS[m.split(".")[0]])
    ]
    assert not wrong, "\n".join(wrong)


def test_a_missing_module_names_its_extra():
    from concursus_lab.common.optional import require

    EXTRAS["concursus_lab_no_such_client"] = "kafka"
    try:
        with pytest.raises(MissingDependency, match=r"pip install 'concursus-lab\[kafka\]'"):
            require("concursus_lab_no_such_client.sub", needed_by="Tests")
    finally:
        del EXTRAS["concursus_lab_no_such_client"]
