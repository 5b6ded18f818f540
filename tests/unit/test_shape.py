"""The package's shape: modules a reader finishes in one sitting, arrows that point one way.

The layer contract itself is ``lint-imports`` (pyproject.toml, run by the test command);
these tests hold what it cannot say.
"""

from __future__ import annotations

import grimp

from tests.shape import FUNCTION_LINES, MODULE_LINES, sizes

#: Where a split would hurt reading more than the length does, and why.
LONGER_ON_PURPOSE: dict[str, str] = {}


def test_no_module_or_function_is_over_the_limit():
    too_long = []
    for size in sizes():
        key = f"{size.path}::{size.name}" if size.name else size.path
        limit = FUNCTION_LINES if size.name else MODULE_LINES
        if size.lines > limit and key not in LONGER_ON_PURPOSE:
            too_long.append(f"{key}: {size.lines} lines of code (limit {limit})")
    assert not too_long, "split these by idea, or say why not in LONGER_ON_PURPOSE:\n" + (
        "\n".join(too_long)
    )


def test_the_counter_counts_code_not_docstrings_or_comments():
    from tests.shape import code_lines

    source = 'def f():\n    """Doc\n    string."""\n    # a comment\n\n    return 1\n'
    assert sorted(code_lines(source)) == [1, 6]


def test_nothing_inside_the_package_imports_its_root():
    # the root is the public surface: a module that imports it reaches every layer at once
    graph = grimp.build_graph("concursus_lab")
    assert graph.find_modules_that_directly_import("concursus_lab") == set()
