"""Kinds of source are plug-ins: each registers its URL scheme in an entry point group.

A kind of source is a :class:`~concursus_lab.sources.base.Source` subclass with a class
method ``from_url(url, **options)``, registered under the entry point group
:data:`GROUP` by the package that ships it, the way altair and ibis find their backends::

    [project.entry-points."concursus_lab.sources"]
    mykind = "my_package.source:MySource"

``cl.open("mykind://...")`` then loads it (only then: drivers are imported when their kind
is opened). concursus-lab's own kinds register themselves the same way, in its
``pyproject.toml``; :class:`concursus_lab.testing.SourceContract` is the test suite every
kind passes, ours and a third party's.

>>> {"cassandra", "kafka", "redis"} <= set(kinds())
True
"""

from __future__ import annotations

import functools
from importlib.metadata import EntryPoint, entry_points

from concursus_lab.exceptions import MissingDependency, SourceError

#: The entry point group kinds of source register in.
GROUP = "concursus_lab.sources"


@functools.cache
def kinds() -> dict[str, EntryPoint]:
    """URL scheme -> the entry point of its kind of source, for every installed kind."""
    found: dict[str, EntryPoint] = {}
    for point in entry_points(group=GROUP):
        found.setdefault(point.name.lower(), point)
    return found


def kind(scheme: str, url: str) -> type:
    """The class registered for ``scheme``, loaded; a :class:`SourceError` naming the kinds
    there are when none is."""
    registered = kinds()
    point = registered.get(scheme.lower())
    if point is None:
        known = ", ".join(f"{name}://" for name in sorted(registered))
        raise SourceError(
            f"unknown source scheme {scheme!r} in {url!r}; use a folder or file path, "
            f"file://, {known} or fixture:NAME. A kind of source of your own registers in "
            f"the entry point group {GROUP!r} (see docs/own-events.md)."
        )
    try:
        return point.load()
    except MissingDependency:
        raise
    except ImportError as exc:
        raise SourceError(
            f"the {scheme}:// kind of source ({point.value}) cannot be loaded: {exc}."
        ) from exc
