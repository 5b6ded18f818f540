"""A result that prints as its summary: a short deterministic text, in a notebook as ``<pre>``.

Results whose whole view is a short log (a trace, a comparison of two, the schemas of a
history, an upcaster report) subclass :class:`Printed` and write ``summary()``; notebook CI
compares that text. The notebook view never raises: a display hook that raises is swallowed
by the front end, so the error is shown instead.

>>> class Two(Printed):
...     def summary(self) -> str:
...         return "2 < 3"
>>> Two(), Two()._repr_html_()
(2 < 3, '<pre>2 &lt; 3</pre>')
"""

from __future__ import annotations

import abc
import html


class Printed(abc.ABC):
    """A result whose text (and notebook view) is its ``summary()``, a short log."""

    @abc.abstractmethod
    def summary(self) -> str:
        """The short deterministic text the result prints as."""

    def __repr__(self) -> str:
        return self.summary()

    def _repr_html_(self) -> str:
        try:
            return f"<pre>{html.escape(self.summary())}</pre>"
        except Exception as exc:  # a display hook must never raise
            return f"<pre>{html.escape(repr(exc))}</pre>"
