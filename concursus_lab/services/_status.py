"""What ``concursus-lab services status`` tells of one local server: :class:`ServiceStatus`."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from concursus_lab.services import _process
from concursus_lab.services._spec import Service


@dataclasses.dataclass(frozen=True)
class ServiceStatus:
    """What is known about one local service.

    Attributes
    ----------
    name : str
        One of :data:`~concursus_lab.services.NAMES`, e.g. ``"cassandra"``.
    version : str
        The server version pinned by this package.
    address : str
        ``host:port`` clients connect to.
    running : bool
        True when the JVM started from :attr:`state_dir` is alive.
    pid : int or None
        That JVM's process id.
    answering : bool
        True when something accepts connections on :attr:`address` (it may be a server not
        started from this state folder: then ``running`` is False).
    state_dir : Path
        The folder holding data, config, the log and the pid file.
    log : Path
        The server's log (stdout and stderr of the JVM).
    startup_seconds : float or None
        How long the server took to answer after launch, when this call started it.
    """

    name: str
    version: str
    address: str
    running: bool
    pid: int | None
    answering: bool
    state_dir: Path
    log: Path
    startup_seconds: float | None = None

    @property
    def state(self) -> str:
        """``running``, ``starting``, ``external`` (answering, not started here) or ``stopped``."""
        if self.running:
            return "running" if self.answering else "starting"
        return "external" if self.answering else "stopped"

    def __repr__(self) -> str:
        return (
            f"ServiceStatus(name={self.name!r}, version={self.version!r}, state={self.state!r}, "
            f"address={self.address!r}, pid={self.pid!r})"
        )

    def __str__(self) -> str:
        pid = f"pid {self.pid}" if self.pid is not None else "pid -"
        return (
            f"{self.name:<9} {self.version:<6} {self.state:<8} {self.address:<15} "
            f"{pid:<10} {self.state_dir}"
        )


def of(service: Service, *, startup_seconds: float | None = None) -> ServiceStatus:
    """What is known about ``service`` now: its pid, whether it answers, where it keeps state."""
    pid = service.owned_pid()
    return ServiceStatus(
        name=service.name,
        version=service.version,
        address=service.address,
        running=pid is not None,
        pid=pid,
        answering=_process.port_open(service.host, service.port, timeout=0.3),
        state_dir=service.state,
        log=service.log,
        startup_seconds=startup_seconds,
    )
