"""A chart's stable text form: what it shows, as text that notebook CI can compare.

A chart drawn by a widget leaves nothing comparable in a notebook (altair's ``JupyterChart``
prints as ``<JupyterChart object at 0x...>``), so a view that silently changes would still
pass ``concursus-lab check``. :func:`text_form` writes the Vega-Lite spec as sorted, indented
lines, with each dataset summarised (rows, columns, the first rows and a digest of all of them),
so the same chart of the same data gives the same text in every run (altair 6 names selections
and views by their content, not by a counter). :func:`with_text_form` puts that text beside the
widget: it is the ``text/plain`` of every chart once ``cl.plot.offline()`` is on. A changed
mark, encoding, title or datum changes the text, and nbval shows the lines that changed.

>>> print(text_form({"mark": {"type": "bar"}, "data": {"values": [{"a": 1}, {"a": 2}]}}))
Vega-Lite chart
data 1: 2 rows, columns [a], digest cccf1df1fd27
  {"a": 1}
  {"a": 2}
spec:
data: "data 1"
mark:
  type: "bar"
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from typing import Any

#: Rows of each dataset written out in full; the digest covers all of them.
ROWS_SHOWN = 5
_LEFT_OUT = ("$schema", "config", "usermeta")


def text_form(spec: dict) -> str:
    """The stable text of a Vega-Lite ``spec`` (a dict, as ``chart.to_dict()`` gives)."""
    spec = {k: v for k, v in spec.items() if k not in _LEFT_OUT}
    datasets: dict[str, list] = dict(spec.pop("datasets", {}) or {})
    names: dict[str, str] = {}
    inline = []

    def data_label(data: Any) -> Any:
        if isinstance(data, dict) and "name" in data and data["name"] in datasets:
            key = data["name"]
        elif isinstance(data, dict) and isinstance(data.get("values"), list):
            key = f"inline {len(inline)}"
            inline.append(key)
            datasets[key] = data["values"]
        else:
            return data
        names.setdefault(key, f"data {len(names) + 1}")
        return names[key]

    body = _map_data(spec, data_label)
    lines = ["Vega-Lite chart"]
    for key, label in names.items():
        lines.append(f"{label}: {_summary(datasets[key])}")
        shown = datasets[key][:ROWS_SHOWN]
        lines.extend(f"  {json.dumps(row, sort_keys=True, default=str)}" for row in shown)
    lines.append("spec:")
    lines.extend(_lines(body, 0))
    return "\n".join(lines)


def _lines(value: Any, depth: int) -> list[str]:
    """``value`` as sorted, indented lines: one line per key, a list of plain values (a sort
    order, a colour range) on the key's own line, so a diff shows what changed."""
    pad = "  " * depth
    if isinstance(value, dict):
        out = []
        for key in sorted(value):
            item = value[key]
            if _plain(item):
                out.append(f"{pad}{key}: {_scalar(item)}")
            else:
                out.append(f"{pad}{key}:")
                out.extend(_lines(item, depth + 1))
        return out
    if isinstance(value, list):
        out = []
        for item in value:
            if _plain(item):
                out.append(f"{pad}- {_scalar(item)}")
            else:
                out.append(f"{pad}-")
                out.extend(_lines(item, depth + 1))
        return out
    return [f"{pad}{_scalar(value)}"]


def _plain(value: Any) -> bool:
    if isinstance(value, list):
        return all(not isinstance(v, dict | list) for v in value)
    return not isinstance(value, dict)


def _scalar(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, default=str)


def _map_data(value: Any, label: Any) -> Any:
    """``value`` with every ``data`` entry replaced by ``label(data)``."""
    if isinstance(value, dict):
        return {
            k: (label(v) if k == "data" else _map_data(v, label)) for k, v in value.items()
        }
    if isinstance(value, list):
        return [_map_data(v, label) for v in value]
    return value


def _summary(rows: list) -> str:
    columns = sorted({k for row in rows if isinstance(row, dict) for k in row})
    digest = hashlib.sha256(
        json.dumps(rows, sort_keys=True, default=str).encode()
    ).hexdigest()[:12]
    return f"{len(rows):,} rows, columns [{', '.join(columns)}], digest {digest}"


def with_text_form(base: Callable[..., Any]) -> Callable[..., Any]:
    """An altair renderer that draws as ``base`` does (``cl.plot.offline`` passes altair's
    ``jupyter`` renderer, the JupyterChart widget) with :func:`text_form` as ``text/plain``."""

    def render(spec: dict, **metadata: Any) -> Any:
        drawn = base(spec, **metadata)
        if isinstance(drawn, tuple):  # a widget's (data, metadata)
            data, extra = drawn
            return {**data, "text/plain": text_form(spec)}, extra
        return {**drawn, "text/plain": text_form(spec)}

    return render
