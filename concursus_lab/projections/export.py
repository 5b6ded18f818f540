"""Export a view: to a Parquet or CSV file, or into a Cassandra table of its own.

>>> import tempfile
>>> from pathlib import Path
>>> import polars as pl
>>> import concursus_lab as cl
>>> view = pl.DataFrame({"truck": ["LEW-1", "CRO-4"], "on_board": [3, 1]})
>>> folder = Path(tempfile.mkdtemp())
>>> cl.export(view, folder / "load.parquet").name
'load.parquet'
>>> pl.read_parquet(folder / "load.parquet").equals(view)
True
>>> print((folder / "load.csv").read_text() if cl.export(view, folder / "load.csv") else "")
truck,on_board
LEW-1,3
CRO-4,1
<BLANKLINE>

Writing to Cassandra (``cl.export(view, "cassandra://host:9042/keyspace", table=...,
key=...)``) creates the table from the view's schema when it does not exist (the key
columns as its primary key, column names kept as they are, quoted) and upserts every row,
with a prepared statement, concurrently. Upserts never delete: a key that left the view
keeps its old row unless ``replace=True`` (which truncates the table first). Times are
stored to the millisecond, as Cassandra keeps them. The keyspace must exist
(``cl.open(url, create=True)`` makes one). It connects as ``cl.open`` does, through the same
function: TLS, consistency, ``local_dc`` and credentials from the arguments, the URL or the
``CONCURSUS_LAB_CASSANDRA_*`` environment variables.
"""

from __future__ import annotations

import datetime as dt
import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import polars as pl

from concursus_lab.common.optional import require
from concursus_lab.common.whole_file import write_whole
from concursus_lab.exceptions import SchemaError, SourceError, SourceUnavailable

_TABLE = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,47}")


def export(
    view: pl.DataFrame,
    target: str | os.PathLike,
    *,
    table: str | None = None,
    key: str | Sequence[str] | None = None,
    replace: bool = False,
    **connection_options: Any,
) -> Any:
    """Write a view to a file (``.parquet``, ``.csv``) or to a Cassandra table.

    Parameters
    ----------
    view
        A view frame (what :func:`~concursus_lab.project` returns); it is not changed.
    target
        A path ending in ``.parquet`` or ``.csv`` (written whole, replacing the file) in a
        folder that exists, or a ``cassandra://host[:port]/keyspace`` URL.
    table
        Cassandra only: the table to write (made from the view's schema if missing).
    key
        Cassandra only: the column(s) identifying a row, the table's primary key.
    replace
        Cassandra only: empty the table first, so that it holds exactly the view.
    **connection_options
        Cassandra only: how to connect, as for :func:`concursus_lab.open` (``tls=True``,
        ``ca_file=``, ``consistency=``, ``local_dc=``, ``username=``, ``password=``, ...);
        the URL's query and the ``CONCURSUS_LAB_CASSANDRA_*`` variables are read too.

    Returns
    -------
    pathlib.Path or int
        The file written, or the number of rows written to Cassandra.
    """
    frame = _view(view)
    if isinstance(target, str) and target.lower().startswith("cassandra://"):
        if table is None or key is None:
            raise SchemaError(
                "writing to Cassandra needs `table=` (its name) and `key=` (the columns that "
                "identify a row, its primary key), e.g. "
                "cl.export(view, url, table='truck_load', key='truckId')."
            )
        return to_cassandra(frame, target, table, key=key, replace=replace, **connection_options)
    if table is not None or key is not None or replace or connection_options:
        raise SchemaError(
            "`table`, `key`, `replace` and connection options are for a cassandra:// target; "
            "a file is written "
            f"whole. Got target {str(target)!r}."
        )
    path = Path(target)
    suffix = path.suffix.lower()
    if suffix not in (".parquet", ".csv"):
        raise SchemaError(
            f"`target` {str(target)!r} must end in .parquet or .csv, or be a "
            "cassandra://host:9042/keyspace URL."
        )
    if suffix == ".csv":
        nested = [c for c, t in frame.schema.items() if t.is_nested() or t == pl.Object]
        if nested:
            raise SchemaError(
                f"CSV cannot hold the nested column(s) {', '.join(map(repr, nested))}; write "
                "Parquet instead, or turn them into text first (a list with "
                "`.list.join(',')`, a struct with `.struct.json_encode()`)."
            )
    _check_folder(path)
    return write_whole(path, frame.write_parquet if suffix == ".parquet" else frame.write_csv)


def _check_folder(path: Path) -> None:
    """The folder ``path`` goes in must be there: a typo never makes a new tree of folders."""
    folder = path.parent
    if folder.is_dir():
        return
    if folder.exists():
        raise SourceError(f"cannot write {str(path)!r}: {str(folder)!r} is a file, not a folder.")
    raise SourceError(
        f"cannot write {str(path)!r}: its folder {str(folder)!r} does not exist. Check the "
        f"path, or make the folder first (Path({str(folder)!r}).mkdir(parents=True))."
    )


# -------------------------------------------------------------------------- cassandra


def to_cassandra(
    view: pl.DataFrame,
    url: str,
    table: str,
    *,
    key: str | Sequence[str],
    replace: bool = False,
    **connection_options: Any,
) -> int:
    """Upsert every row of ``view`` into ``table`` (made if missing); returns the rows written.

    See the module docstring; :func:`export` with a ``cassandra://`` target calls this.
    ``connection_options`` are ``cl.open``'s (``consistency``, ``username``, ``password``,
    ``tls``, ``ca_file``, ``local_dc``, ``timeout``), read from the URL and the environment
    in the same way: both connect through one function.
    """
    from concursus_lab.sources.cassandra.connect import open_session, parse_url

    frame = _view(view)
    parse_url(url)  # a bad URL is refused before anything else
    if not isinstance(table, str) or not _TABLE.fullmatch(table):
        raise SchemaError(
            f"`table` must be a Cassandra table name (a letter, then letters, digits or _; "
            f"at most 48), got {table!r}."
        )
    keys = _row_key(frame, key)
    columns = {name: _cql_type(name, dtype) for name, dtype in frame.schema.items()}
    connection = open_session(url, **connection_options)
    address, cluster, session = connection.address, connection.cluster, connection.session
    try:
        execute_concurrent_with_args = require(
            "cassandra.concurrent", needed_by="Exports to Cassandra"
        ).execute_concurrent_with_args

        keyspace = cluster.metadata.keyspaces.get(address.keyspace)
        if keyspace is None:
            raise SourceUnavailable(
                f"keyspace {address.keyspace!r} does not exist at {address.url}; make it "
                f"(cl.open({address.url!r}, create=True) makes it with Concursus's tables)."
            )
        name = f'{address.keyspace}."{table}"'
        existing = keyspace.tables.get(table)
        if existing is None:
            definitions = ", ".join(f"{_quote(c)} {t}" for c, t in columns.items())
            primary = ", ".join(_quote(k) for k in keys)
            session.execute(
                f"CREATE TABLE IF NOT EXISTS {name} ({definitions}, PRIMARY KEY (({primary})))"
            )
        else:
            _check_table(existing, columns, keys, name)
        if replace:
            session.execute(f"TRUNCATE {name}")
        insert = session.prepare(
            f"INSERT INTO {name} ({', '.join(_quote(c) for c in columns)}) "
            f"VALUES ({', '.join('?' * len(columns))})"
        )
        rows = _rows(frame)
        results = execute_concurrent_with_args(
            session, insert, rows, concurrency=32, raise_on_first_error=True
        )
        return sum(1 for ok, _ in results if ok)
    finally:
        cluster.shutdown()


def _row_key(frame: pl.DataFrame, key: str | Sequence[str]) -> tuple[str, ...]:
    """The view's primary key columns, checked: present, never null, unique together."""
    keys = (key,) if isinstance(key, str) else tuple(key)
    missing = [k for k in keys if k not in frame.columns]
    if not keys or missing:
        raise SchemaError(
            f"`key` {list(keys)!r} names column(s) the view does not have "
            f"({', '.join(map(repr, missing))}); it has {frame.columns!r}."
        )
    nulls = [k for k in keys if frame[k].null_count()]
    if nulls:
        raise SchemaError(
            f"key column(s) {', '.join(map(repr, nulls))} hold nulls; Cassandra cannot store a "
            "row without its primary key. Filter those rows out or fill them."
        )
    if frame.select(pl.struct(keys).is_duplicated().any()).item():
        raise SchemaError(
            f"`key` {list(keys)!r} does not identify the view's rows (some repeat); each "
            "upsert would overwrite the one before. Pass the columns that do."
        )
    return keys


def _cql_type(name: str, dtype: pl.DataType) -> str:
    simple = {
        pl.String: "text",
        pl.Boolean: "boolean",
        pl.Int8: "tinyint",
        pl.Int16: "smallint",
        pl.Int32: "int",
        pl.Int64: "bigint",
        pl.UInt8: "smallint",
        pl.UInt16: "int",
        pl.UInt32: "bigint",
        pl.UInt64: "varint",
        pl.Float32: "float",
        pl.Float64: "double",
        pl.Date: "date",
        pl.Time: "time",
        pl.Duration: "bigint",
        pl.Struct: "text",
    }
    if isinstance(dtype, pl.Datetime):
        return "timestamp"
    if isinstance(dtype, pl.Decimal):
        return "decimal"
    if isinstance(dtype, (pl.List, pl.Array)):
        inner = _cql_type(name, dtype.inner)
        return f"list<{inner}>"
    cql = simple.get(dtype.base_type())
    if cql is not None:
        return cql
    raise SchemaError(
        f"column {name!r} is {dtype}, which has no Cassandra type here; cast it (to a string "
        "with .cast(pl.String), say) or drop it before writing."
    )


def _rows(frame: pl.DataFrame) -> list[tuple]:
    """The rows as driver values: structs as JSON text, durations as microseconds."""
    fixes = []
    for name, dtype in frame.schema.items():
        if isinstance(dtype, pl.Struct):
            fixes.append(pl.col(name).struct.json_encode())
        elif isinstance(dtype, pl.Duration):
            fixes.append(pl.col(name).dt.total_microseconds())
    if fixes:
        frame = frame.with_columns(fixes)
    return [tuple(_value(v) for v in row) for row in frame.iter_rows()]


def _value(value: Any) -> Any:
    if isinstance(value, dt.datetime) and value.tzinfo is None:
        return value.replace(tzinfo=dt.UTC)
    return value


def _check_table(existing: Any, columns: dict[str, str], keys: tuple[str, ...], name: str) -> None:
    have = {c: str(col.cql_type) for c, col in existing.columns.items()}
    primary = tuple(c.name for c in existing.partition_key) + tuple(
        c.name for c in existing.clustering_key
    )
    problems = []
    if primary != keys:
        problems.append(f"its primary key is {list(primary)!r}, not {list(keys)!r}")
    for column, cql in columns.items():
        if column not in have:
            problems.append(f"it has no column {column!r}")
        elif have[column].replace(" ", "") != cql.replace(" ", ""):
            problems.append(f"column {column!r} is {have[column]}, the view's is {cql}")
    if problems:
        raise SchemaError(
            f"table {name} exists and does not fit the view: {'; '.join(problems)}. Write to "
            "another table, or drop this one (DROP TABLE) to have it made again."
        )


def _quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


def _view(view: Any) -> pl.DataFrame:
    if isinstance(view, pl.LazyFrame):
        return view.collect()
    if isinstance(view, pl.DataFrame):
        return view
    raise SchemaError(
        f"`view` must be a polars DataFrame (a view from cl.project), got {type(view).__name__}."
    )
