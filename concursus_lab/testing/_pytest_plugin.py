"""pytest plugin: ``--nbval-concursus-lab`` adds concursus-lab's sanitisers to nbval.

Installed with the package (entry point ``pytest11``); it does nothing unless the option is
given. Any ``--nbval-sanitize-with FILE`` of your own still applies: both are merged.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

SANITIZE = Path(__file__).with_name("nbval.cfg")


def pytest_addoption(parser):
    group = parser.getgroup("concursus-lab")
    group.addoption(
        "--nbval-concursus-lab",
        action="store_true",
        default=False,
        help="apply concursus-lab's nbval sanitisers (addresses, temp paths, progress bars, "
        "elapsed times, widget ids), merged with any --nbval-sanitize-with file",
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
