"""A Spark session that reads Concursus's Cassandra tables and Kafka topics.

:func:`session` starts (or returns) a local session with the Spark Cassandra Connector's and
Spark's Kafka source's jars on its class path. The jars are resolved from Maven Central with
Maven, exactly as the local services' jars are (``spark-pom.xml`` beside this module pins
them; the class path is cached, so later sessions need neither Maven nor the network), and
the session runs in UTC with Arrow on. On a cluster of your own, pass your session to every
function instead and add the packages named in :data:`PACKAGES` (docs/spark.md).

For example::

    import concursus_lab.spark as cls
    spark = cls.session()                                 # local[2], 2 GiB driver
    spark.conf.get("spark.sql.session.timeZone")          # 'UTC'
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from concursus_lab.services import classpath
from concursus_lab.spark._pyspark import pyspark
from concursus_lab.spark.cassandra import EXTENSIONS

POM = Path(__file__).with_name("spark-pom.xml")
LOG_SETTINGS = Path(__file__).with_name("spark-log4j2.properties")
_JVM = f"-Duser.timezone=UTC -Dlog4j2.configurationFile={LOG_SETTINGS.as_uri()}"


def _versions() -> dict[str, str]:
    text = POM.read_text(encoding="utf-8")
    return dict(re.findall(r"<([a-z.]+)\.version>([^<]+)<", text))


#: The Maven coordinates to add to a session of your own (``spark.jars.packages`` or
#: ``--packages``): the connector and the Kafka source, for Spark 3.5 and Scala 2.12.
PACKAGES: tuple[str, ...] = (
    f"com.datastax.spark:spark-cassandra-connector_2.12:{_versions()['cassandra.connector']}",
    f"org.apache.spark:spark-sql-kafka-0-10_2.12:{_versions()['kafka.source']}",
)

#: The settings every session this module starts has (``config=`` adds to them).
SETTINGS: dict[str, str] = {
    "spark.sql.session.timeZone": "UTC",
    "spark.sql.execution.arrow.pyspark.enabled": "true",
    "spark.sql.shuffle.partitions": "4",
    "spark.ui.enabled": "false",
    "spark.ui.showConsoleProgress": "false",
    "spark.driver.extraJavaOptions": _JVM,
    "spark.executor.extraJavaOptions": _JVM,
    "spark.executorEnv.TZ": "UTC",
    # the connector's functions: a read selects write times (for rows with no processingId)
    "spark.sql.extensions": EXTENSIONS,
    # a read's options may hold a Kafka JAAS line with a password: never shown in a plan
    "spark.sql.redaction.options.regex": "(?i)url|jaas|password|secret",
}


def jars(*, say: Any = None) -> list[Path]:
    """The connector's and the Kafka source's jars (Maven resolves them on first use)."""
    return classpath(POM, "spark", say=say)


def session(
    master: str = "local[2]",
    *,
    cassandra: str | None = "127.0.0.1:9042",
    memory: str = "2g",
    config: Mapping[str, str] | None = None,
    app_name: str = "concursus-lab",
) -> Any:
    """A SparkSession with the jars, UTC and Arrow: the running one if there is one.

    Parameters
    ----------
    master
        Where it runs (``"local[2]"``: two cores of this machine).
    cassandra
        ``host:port`` of the Cassandra contact point (``spark.cassandra.connection.*``);
        a ``cassandra://`` URL given to :func:`~concursus_lab.spark.read` overrides it.
    memory
        The driver's memory (in local mode, the executors' too).
    config
        More Spark settings; they win over this module's.
    """
    spark = pyspark()
    # the local daemon and its workers run this interpreter, on the loopback address
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    settings = dict(SETTINGS)
    settings["spark.jars"] = ",".join(str(jar) for jar in jars())
    settings["spark.driver.memory"] = memory
    if cassandra:
        host, _, port = cassandra.rpartition(":")
        settings["spark.cassandra.connection.host"] = host or cassandra
        settings["spark.cassandra.connection.port"] = port if host else "9042"
    settings.update(config or {})
    builder = spark.sql.SparkSession.builder.master(master).appName(app_name)
    for key, value in settings.items():
        builder = builder.config(key, value)
    started = builder.getOrCreate()
    started.sparkContext.setLogLevel("ERROR")
    return started
