"""pytest plugin: ``--nbval-concursus-lab`` runs nbval the way ``concursus-lab check`` does.

Installed with the package (entry point ``pytest11``); it does nothing unless the option is
given. With it:
- concursus-lab's sanitisers apply, merged with any ``--nbval-sanitize-with FILE`` of yours;
- nbval's notebooks run as :mod:`concursus_lab.testing._notebook_run` runs them: a kernel
  that dies is noticed at once, output written to file descriptor 1 is kept, a failing cell's
  report shows each changed output once (``-`` stored, ``+`` now), without colour codes when
  the output is not a terminal;
- ``--nbval-concursus-lab-record DIR`` writes each notebook as it ran, and what happened in
  each cell, to DIR.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from concursus_lab.common.optional import require

pytest = require("pytest", needed_by="The pytest plugin")

SANITIZE = Path(__file__).with_name("nbval.cfg")


def pytest_addoption(parser):
    group = parser.getgroup("concursus-lab")
    group.addoption(
        "--nbval-concursus-lab",
        action="store_true",
        default=False,
        help="apply concursus-lab's nbval sanitisers (addresses, temp paths, progress bars, "
        "elapsed times, widget ids), merged with any --nbval-sanitize-with file; notice a dead "
        "kernel at once; show each changed output once, - stored + now",
    )
    group.addoption(
        "--nbval-concursus-lab-record",
        default=None,
        metavar="DIR",
        help="with --nbval-concursus-lab: write each notebook as it ran, and each cell's "
        "outcome, to DIR (what `concursus-lab check` makes its artifacts from)",
    )


def pytest_configure(config):
    if not config.getoption("nbval_concursus_lab", default=False):
        return
    own = getattr(config.option, "nbval_sanitize_with", None)
    text = SANITIZE.read_text()
    if own:
        text += "\n" + Path(own).read_text()
    handle, name = tempfile.mkstemp(prefix="concursus-lab-sanitize-", suffix=".cfg")
    with open(handle, "w") as merged:
        merged.write(text)
    config.option.nbval_sanitize_with = name
    config.add_cleanup(lambda: Path(name).unlink(missing_ok=True))


@pytest.hookimpl(wrapper=True)
def pytest_collect_file(file_path, parent):
    collected = yield
    if not parent.config.getoption("nbval_concursus_lab", default=False):
        return collected
    from concursus_lab.testing._notebook_run import upgrade

    return [upgrade(node) for node in collected]
