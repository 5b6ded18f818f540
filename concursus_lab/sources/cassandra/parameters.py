"""The ``parameters`` column: Java Concursus's ``map<text, text>`` <-> one JSON object text.

Java Concursus stores each parameter's value as its own JSON text in a CQL map. Reading,
:func:`parameters_json` turns a page of serialised maps into canonical JSON object texts
(compact, keys sorted, as :func:`concursus_lab.frame.schema.normalise_parameters` writes
them) with one gather and one parse for the whole page, and says why a row's map cannot be
read. Writing, :func:`encode_parameters` splits each JSON object into per-value JSON texts.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import orjson
import polars as pl
import pyarrow as pa

from concursus_lab.common.text import clip
from concursus_lab.frame import canonical_json
from concursus_lab.sources.cassandra.columns import string_array

_SORT = orjson.OPT_SORT_KEYS


def parameters_json(cells: tuple | list) -> tuple[pl.Series, dict[int, str]]:
    """Serialised ``map<text, text>`` cells -> canonical JSON object texts.

    Returns the texts (``"{}"`` for a null or empty map) and, for the rows that cannot be
    decoded, why (those rows hold ``"{}"`` in the texts).

    The fast path writes the whole page as one JSON array of objects with a single NumPy
    gather (``[{"key":<stored value>,...},...]``), parses it with one ``orjson.loads`` and
    writes each object back compact with sorted keys. Each value must still be JSON on its
    own: one that is not can only pass inside the page by breaking out of its place, which
    needs a ``,`` (to start another member) or a ``}`` (to close its object), so values
    holding either are parsed one by one first; and the page is trusted only when it parses
    into as many objects as rows, each with as many keys as its map has entries. Otherwise
    (and for keys that JSON must escape) rows are read one by one, each value parsed on its
    own, and a value that is not JSON sets its row aside with the reason.
    """
    entries = _map_entries(cells)
    bad: dict[int, str] = {}
    for row in entries.malformed.tolist():
        bad[row] = "parameters is not a well-formed map: " + _why_malformed(cells[row])
    return _canonical(entries, len(cells), bad, lambda row: _one_row(cells[row]))


def parameters_from_arrow(column: pa.Array) -> tuple[pl.Series, dict[int, str], Callable]:
    """A ``map<string, string>`` Arrow column (the Spark connector's) -> canonical JSON
    object texts, why rows cannot be read, and each row's map as stored (for the
    quarantine): :func:`parameters_json`'s rules, read from the Arrow buffers as they are
    (never written back into Cassandra's bytes)."""
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    n = len(column)
    offsets = column.offsets.to_numpy(zero_copy_only=False).astype(np.int64)
    counts = np.diff(offsets)
    if column.null_count:  # a null map has no entries
        counts[column.is_null().to_numpy(zero_copy_only=False)] = 0
    row = np.repeat(np.arange(n, dtype=np.int64), counts)
    # each entry's index in the children: its map's first, then its place in the map
    first = np.repeat(offsets[:-1] - (np.cumsum(counts) - counts), counts)
    entry = first + np.arange(len(row), dtype=np.int64)
    key_data, key_start, key_len = _spans(column.keys)
    value_data, value_start, value_len = _spans(column.items)
    entries = _Entries(
        np.concatenate([key_data, value_data]),
        row,
        key_start[entry],
        key_len[entry],
        value_start[entry] + len(key_data),
        value_len[entry],
        np.zeros(0, dtype=np.int64),
    )

    def pairs(r: int) -> list[tuple[str, str]]:
        return list(column[r].as_py() or [])

    texts, bad = _canonical(entries, n, {}, lambda r: _from_pairs(pairs(r)))
    return texts, bad, lambda r: orjson.dumps(dict(pairs(r))).decode()


def _spans(strings: pa.Array) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A string array's bytes, and each value's start and length in them (a null: empty)."""
    strings = strings.cast(pa.large_string())
    offsets_buffer, data_buffer = strings.buffers()[1:3]
    offsets = np.frombuffer(offsets_buffer, dtype=np.int64)
    offsets = offsets[strings.offset : strings.offset + len(strings) + 1]
    data = np.frombuffer(data_buffer, dtype=np.uint8) if data_buffer else np.zeros(0, np.uint8)
    lengths = np.diff(offsets)
    if strings.null_count:
        lengths = np.where(strings.is_null().to_numpy(zero_copy_only=False), 0, lengths)
    return data, offsets[:-1], lengths


def _canonical(
    entries: _Entries, n: int, bad: dict[int, str], one_row: Callable
) -> tuple[pl.Series, dict[int, str]]:
    """The canonical texts of ``n`` maps' ``entries`` (see :func:`parameters_json`);
    ``one_row(row)`` reads a row on its own, as (text, None) or ("{}", why)."""
    slow = set(bad) | set(entries.row[_needs_escape(entries)].tolist())
    slow |= _invalid_values(entries)
    counts = np.bincount(entries.row, minlength=n)
    parsed = _parse_page(entries, n, slow)
    if parsed is None or len(parsed) != n:
        parsed, slow = [{}] * n, set(range(n)) - set(bad)
    else:
        sizes = np.fromiter(map(len, parsed), dtype=np.int64, count=n)
        slow |= set(np.flatnonzero(sizes != counts).tolist()) - set(bad)
    texts = _written(parsed, slow)
    # where orjson may have changed a number (a float, beyond 64 bits), read the row exactly
    risky = pl.Series(string_array(texts)).str.contains(canonical_json.RISKY).fill_null(False)
    slow |= set(np.flatnonzero(risky.to_numpy()).tolist())
    for row in sorted(slow - set(bad)):
        text, why = one_row(row)
        if why is None:
            texts[row] = text.encode()
        else:
            bad[row] = why
    for row in bad:
        texts[row] = b"{}"
    return pl.Series("parameters", string_array(texts)), bad


def _written(parsed: list, slow: set[int]) -> list[bytes]:
    """Each parsed map as compact JSON with sorted keys; one that nests too deeply to be
    written back goes to ``slow`` (read again, one by one, to say so)."""
    dumps = orjson.dumps
    try:
        return [dumps(o, option=_SORT) for o in parsed]
    except TypeError:
        texts = []
        for row, obj in enumerate(parsed):
            try:
                texts.append(dumps(obj, option=_SORT))
            except TypeError:
                texts.append(b"{}")
                slow.add(row)
        return texts


class _Entries:
    """The (row, key span, value span) of every map entry of a page, in row order."""

    __slots__ = ("data", "key_len", "key_start", "malformed", "row", "value_len", "value_start")

    def __init__(self, data, row, key_start, key_len, value_start, value_len, malformed):
        self.data = data
        self.row = row
        self.key_start = key_start
        self.key_len = key_len
        self.value_start = value_start
        self.value_len = value_len
        self.malformed = malformed


def _map_entries(cells: tuple | list) -> _Entries:
    """Walk every map of a page at once: step ``j`` reads the ``j``-th entry of every map.

    A map is ``[int32 n]`` then ``n`` times ``[int32 len][key][int32 len][value]``.
    """
    n = len(cells)
    if None in cells:
        cells = [b"" if c is None else c for c in cells]
    lengths = np.fromiter(map(len, cells), dtype=np.int64, count=n)
    ends = np.cumsum(lengths)
    starts = ends - lengths
    data = np.frombuffer(b"".join(cells), dtype=np.uint8)
    present = np.flatnonzero(lengths > 0)
    short = present[lengths[present] < 4]
    rows = present[lengths[present] >= 4]
    count = _int32_at(data, starts[rows])
    malformed = [short, rows[count < 0]]
    keep = count >= 0
    rows, count, pos, end = rows[keep], count[keep], starts[rows][keep] + 4, ends[rows][keep]
    found: list[tuple[np.ndarray, ...]] = []
    step = 0
    while len(rows):
        done = count <= step
        if done.any():  # a map whose entries do not fill its cell exactly is malformed
            malformed.append(rows[done & (pos != end)])
            rows, count, pos, end = rows[~done], count[~done], pos[~done], end[~done]
            if not len(rows):
                break
        key_start, key_len, pos, ok_key = _read_span(data, pos, end)
        value_start, value_len, pos, ok_value = _read_span(data, pos, end)
        ok = ok_key & ok_value
        malformed.append(rows[~ok])
        found.append((rows[ok], key_start[ok], key_len[ok], value_start[ok], value_len[ok]))
        rows, count, pos, end = rows[ok], count[ok], pos[ok], end[ok]
        step += 1
    bad_rows = np.unique(np.concatenate(malformed))
    if found:
        columns = [np.concatenate(parts) for parts in zip(*found, strict=True)]
        order = np.argsort(columns[0], kind="stable")  # row order, entries in map order
        columns = [c[order] for c in columns]
    else:
        columns = [np.zeros(0, np.int64)] * 5
    if len(bad_rows):
        keep = ~np.isin(columns[0], bad_rows)
        columns = [c[keep] for c in columns]
    return _Entries(data, *columns, bad_rows)


def _read_span(
    data: np.ndarray, pos: np.ndarray, end: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Read ``[int32 len][bytes]`` at each position: (start, length, next position, ok)."""
    ok = pos + 4 <= end
    length = np.where(ok, _int32_at(data, np.where(ok, pos, 0)), 0)
    ok &= length >= 0
    start = pos + 4
    ok &= start + length <= end
    return start, np.where(ok, length, 0), np.where(ok, start + length, end), ok


def _int32_at(data: np.ndarray, pos: np.ndarray) -> np.ndarray:
    """Big-endian signed int32 at each byte position, as int64."""
    if not len(pos):
        return np.zeros(0, dtype=np.int64)
    b = data[pos[:, None] + np.arange(4)].astype(np.int64)
    value = (b[:, 0] << 24) | (b[:, 1] << 16) | (b[:, 2] << 8) | b[:, 3]
    return np.where(value >= 1 << 31, value - (1 << 32), value)


def _invalid_values(entries: _Entries) -> set[int]:
    """Rows with a value holding ``,`` or ``}`` that is not JSON on its own."""
    data = entries.data
    marks = (data == ord(",")) | (data == ord("}"))
    if not marks.any():
        return set()
    before = np.concatenate([[0], np.cumsum(marks)])
    end = entries.value_start + entries.value_len
    flagged = np.flatnonzero(before[end] - before[entries.value_start] > 0)
    view = memoryview(data)
    rows = set()
    loads = orjson.loads
    for i in flagged.tolist():
        start = int(entries.value_start[i])
        try:
            loads(view[start : start + int(entries.value_len[i])])
        except orjson.JSONDecodeError:
            rows.add(int(entries.row[i]))
    return rows


def _needs_escape(entries: _Entries) -> np.ndarray:
    """Entries whose key holds a character that JSON must escape (rare)."""
    data = entries.data
    special = (data == ord('"')) | (data == ord("\\")) | (data < 0x20)
    if not special.any():
        return np.zeros(len(entries.row), dtype=bool)
    before = np.concatenate([[0], np.cumsum(special)])
    end = entries.key_start + entries.key_len
    return before[end] - before[entries.key_start] > 0


#: The constant pieces of the page text, one after another in one buffer.
_PIECES = {"[": b"[", "{": b"{", ',"': b',"', '":': b'":', "},": b"},"}
_CONSTANTS = b"".join(_PIECES.values())
_AT = {}
_offset = 0
for _name, _piece in _PIECES.items():
    _AT[_name] = _offset
    _offset += len(_piece)
_AT['"'] = _AT[',"'] + 1


def _parse_page(entries: _Entries, n: int, skip: set[int]) -> list | None:
    """``[{"k":v,...},...]`` for the whole page in one gather and one parse (None if invalid).

    Rows in ``skip`` are written as ``{}`` and decided one by one afterwards.
    """
    row = entries.row
    if skip:
        keep = ~np.isin(row, np.fromiter(skip, dtype=np.int64))
        columns = (row, entries.key_start, entries.key_len, entries.value_start, entries.value_len)
        row, key_start, key_len, value_start, value_len = (c[keep] for c in columns)
    else:
        key_start, key_len = entries.key_start, entries.key_len
        value_start, value_len = entries.value_start, entries.value_len
    base = len(entries.data)  # constants follow the data in the source buffer
    source = np.concatenate([entries.data, np.frombuffer(_CONSTANTS, dtype=np.uint8)])
    counts = np.bincount(row, minlength=n)
    # segments: "[" once; per row "{" ... "},"; per entry ("\"" or ",\""), key, "\":", value
    first_entry = np.concatenate([[0], np.cumsum(counts)[:-1]])
    block = 1 + 2 * np.arange(n) + 4 * first_entry  # where each row's segments start
    index_in_row = np.arange(len(row)) - first_entry[row]
    total = 1 + 2 * n + 4 * len(row)
    src = np.empty(total, dtype=np.int64)
    length = np.empty(total, dtype=np.int64)
    src[0], length[0] = base + _AT["["], 1
    src[block], length[block] = base + _AT["{"], 1
    close = block + 1 + 4 * counts
    src[close], length[close] = base + _AT["},"], 2
    at = block[row] + 1 + 4 * index_in_row
    quote = np.where(index_in_row == 0, base + _AT['"'], base + _AT[',"'])
    src[at], length[at] = quote, np.where(index_in_row == 0, 1, 2)
    src[at + 1], length[at + 1] = key_start, key_len
    src[at + 2], length[at + 2] = base + _AT['":'], 2
    src[at + 3], length[at + 3] = value_start, value_len
    ends = np.cumsum(length)
    index = np.repeat(src - (ends - length), length) + np.arange(int(ends[-1]), dtype=np.int64)
    text = source[index]
    text[-1] = ord("]")  # the last row's "," closes the array instead
    try:
        return orjson.loads(text.tobytes())
    except orjson.JSONDecodeError:
        return None


def _one_row(cell: bytes | None) -> tuple[str, str | None]:
    """One map, entry by entry: (canonical text, None) or ("{}", why it cannot be read)."""
    try:
        pairs = parse_map(cell)
    except (ValueError, UnicodeDecodeError) as exc:
        return "{}", f"parameters is not a well-formed map: {exc}"
    return _from_pairs(pairs)


def _from_pairs(pairs: list[tuple[str, str]]) -> tuple[str, str | None]:
    """A map's (key, JSON text) pairs as (canonical text, None) or ("{}", why not)."""
    obj = {}
    for key, value in pairs:
        try:
            obj[key] = canonical_json.exact_loads(value)
        except canonical_json.NotCanonical as exc:
            return "{}", f"parameter {key!r} is {exc}: {clip(value, 60)!r}"
    try:
        return canonical_json.dumps(obj), None
    except canonical_json.NotCanonical as exc:
        return "{}", f"parameters are {exc}"


def _why_malformed(cell: bytes | None) -> str:
    try:
        parse_map(cell)
    except (ValueError, UnicodeDecodeError) as exc:
        return str(exc)
    return "its entries do not fill it"


def parse_map(cell: bytes | None) -> list[tuple[str, str]]:
    """One serialised ``map<text, text>`` as its (key, value) pairs, entry by entry.

    The slow, obvious reading, for rows set aside and for tests; raises ValueError.
    """
    if not cell:
        return []
    view = memoryview(cell)

    def int32(at: int) -> int:
        if at + 4 > len(view):
            raise ValueError(f"truncated at byte {at}")
        return int.from_bytes(view[at : at + 4], "big", signed=True)

    count, pos, pairs = int32(0), 4, []
    if count < 0:
        raise ValueError(f"negative entry count {count}")
    for _ in range(count):
        texts = []
        for _part in ("key", "value"):
            length = int32(pos)
            if length < 0 or pos + 4 + length > len(view):
                raise ValueError(f"bad length {length} at byte {pos}")
            texts.append(bytes(view[pos + 4 : pos + 4 + length]).decode("utf-8"))
            pos += 4 + length
        pairs.append((texts[0], texts[1]))
    if pos != len(view):
        raise ValueError(f"{len(view) - pos} trailing bytes")
    return pairs


def stored_map_text(cell: bytes | None) -> str:
    """The map as stored, shown as a JSON object of its raw texts (for the quarantine)."""
    try:
        return orjson.dumps(dict(parse_map(cell))).decode()
    except (ValueError, UnicodeDecodeError):
        return orjson.dumps({"<undecodable map bytes>": bytes(cell or b"").hex()}).decode()


def encode_parameters(texts: list[str]) -> list[dict[str, str]]:
    """Canonical JSON object texts -> what Java Concursus stores: each value's own JSON text.

    ``'{"depotId":"Lewisham","n":42}'`` -> ``{"depotId": '"Lewisham"', "n": "42"}``.
    """
    risky = pl.Series(texts, dtype=pl.String).str.contains(canonical_json.RISKY).to_list()
    fast, exact = orjson.loads, canonical_json.exact_loads  # exact: numbers keep their text
    out = []
    for text, careful in zip(texts, risky, strict=True):
        if careful:
            out.append({k: canonical_json.dumps(v) for k, v in exact(text).items()})
        else:
            out.append({k: orjson.dumps(v).decode() for k, v in fast(text).items()})
    return out
