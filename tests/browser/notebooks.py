"""The notebooks the browser tests open: what a user would write, on the sample store."""

from __future__ import annotations

from pathlib import Path

import nbformat

#: widgets.ipynb: every widget on the committed sample store (cl.open() reads
#: $CONCURSUS_LAB_SOURCE, which the lab fixture points at data/sample).
WIDGETS = [
    """\
import concursus_lab as cl

cl.plot.offline()
store = cl.open()
events = store.events()
deliveries = store.events(duplicates="keep")
print(f"{deliveries.height:,} deliveries")""",
    'cl.plot.lateness(deliveries, by="stream_id")',
    "cl.timeline(deliveries)",
    "cl.lateness_view(deliveries)",
    """\
from concursus_lab.sample import parcel_state, parcel_types  # the sample's event types

cl.explore(deliveries, parcel_state, types=parcel_types, aggregate_id="parcel-0000321")""",
]

#: million.ipynb: the timeline on a million events; the test times each chart cell.
MILLION = [
    """\
import concursus_lab as cl

big = cl.sample.parcels(307_400, seed=1)
print(f"{big.height:,} events")""",
    "cl.timeline(big)",
    "cl.timeline(big, max_aggregates=30, max_events=1_000)",
]


def notebook(cells: list[str]) -> nbformat.NotebookNode:
    """A Python 3 notebook of code cells."""
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(source) for source in cells]
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    return nb


def write_notebooks(folder: Path) -> None:
    """Write widgets.ipynb and million.ipynb into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    nbformat.write(notebook(WIDGETS), folder / "widgets.ipynb")
    nbformat.write(notebook(MILLION), folder / "million.ipynb")
