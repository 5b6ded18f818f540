"""The source contract and its small history builders now ship with the package, so that a
third party's kind of source runs them too: :mod:`concursus_lab.testing.contract`."""

from concursus_lab.testing.contract import (  # noqa: F401 - re-exported for our own tests
    SourceContract,
    at,
    canonical_sort,
    event,
    frame,
)
