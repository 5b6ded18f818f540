"""The same questions on Apache Spark, reading Cassandra and Kafka where they live.

An extra: ``pip install 'concursus-lab[spark]'`` (pyspark 3.5); ``import concursus_lab``
never loads it. What it has, module by module:

* :func:`session` (``session.py``): a local SparkSession with the Cassandra connector's and
  the Kafka source's jars resolved by Maven, UTC, Arrow on; or bring your own session.
* :func:`read` (``read.py``): ``cassandra://`` and ``kafka://`` as a Spark DataFrame in the
  canonical schema, decoded by the local sources' own decoders, with a quarantine beside it;
  :func:`from_polars` and :func:`to_polars` between the two worlds.
* :func:`state_at`, :func:`latest`, :func:`index` (``states.py``, ``latest.py``),
  :func:`lateness` (``lateness.py``) and :func:`project` (``project.py``): the local
  functions' questions, answered on Spark with their rules (``buckets.py`` runs them on
  hash buckets of whole aggregates); each returns a Spark DataFrame that ``.to_polars()``
  collects into exactly the frame the local function gives.

See docs/spark.md (packages for a cluster of your own, what is pushed down) and
docs/scale.md (measured rates, and what 10^9 events take).
"""

from concursus_lab.spark.lateness import lateness
from concursus_lab.spark.latest import index, latest
from concursus_lab.spark.project import project
from concursus_lab.spark.read import SparkEvents, from_polars, read, to_polars
from concursus_lab.spark.result import SparkFrame, SparkStateAt
from concursus_lab.spark.session import PACKAGES, jars, session
from concursus_lab.spark.states import state_at

__all__ = [
    "PACKAGES",
    "SparkEvents",
    "SparkFrame",
    "SparkStateAt",
    "from_polars",
    "index",
    "jars",
    "lateness",
    "latest",
    "project",
    "read",
    "session",
    "state_at",
    "to_polars",
]
