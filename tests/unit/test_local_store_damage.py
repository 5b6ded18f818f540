"""A local store trusts its manifest no further than it can check it (issue 15, item 7).

Each test damages a real store the way a disk, a bad copy or a hostile edit would, and asserts
the concursus-lab error that names the file, and that nothing outside the store is touched.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

import concursus_lab as cl
from concursus_lab.exceptions import SourceError, StoreDamaged
from concursus_lab.frame.jhash import bucket as hash_bucket
from tests.contract import event, frame


@pytest.fixture
def store(tmp_path: Path):
    store = cl.open(tmp_path / "s", create=True)
    store.append(cl.sample.parcels(200, seed=3))
    return store


def _manifest(store) -> dict:
    return json.loads((store.root / "store.json").read_text())


def _rewrite(store, body) -> None:
    (store.root / "store.json").write_text(json.dumps(body))


def _a_file(store, kind: str = "events") -> Path:
    entry = next(f for f in _manifest(store)["files"] if f["kind"] == kind)
    return store.root / entry["path"]


@pytest.mark.parametrize(
    "path",
    ["../outside.parquet", "/tmp/outside.parquet", "events/parcel/../../../outside.parquet",
     "events/other/x.parquet", "events/parcel/store.json"],
)
def test_a_path_outside_the_stores_data_files_is_refused(store, tmp_path, path):
    outside = tmp_path / "outside.parquet"
    frame(event("secret", 1, 2)).write_parquet(outside)
    body = _manifest(store)
    body["files"][0]["path"] = path
    _rewrite(store, body)
    with pytest.raises(StoreDamaged, match=r"files\[0\]\.path .* is not a data file inside"):
        store.events()
    with pytest.raises(StoreDamaged, match=r"store\.json"):
        cl.open(store.root)
    with pytest.raises(StoreDamaged):
        store.append(frame(event("p9", 1, 2)))
    assert outside.exists()  # neither read nor deleted


@pytest.mark.parametrize(
    ("change", "named"),
    [
        (lambda body: [body], "holds a list"),
        (lambda body: {**body, "buckets": "8"}, "'buckets' must be an int"),
        (lambda body: {**body, "buckets": 0}, "'buckets' must be an int of at least 1"),
        (lambda body: {**body, "files": {"a": 1}}, "'files' must be a list"),
        (lambda body: {**body, "files": [1]}, r"files\[0\] must have the keys"),
        (lambda body: _edit_file(body, rows="12"), r"files\[0\]\.rows must be int"),
        (lambda body: _edit_file(body, bucket=True), r"files\[0\]\.bucket must be int"),
        (lambda body: _edit_file(body, kind="both"), r"files\[0\]\.kind must be one of"),
        (lambda body: _edit_file(body, sha256="abc"), r"files\[0\] has no valid size"),
    ],
)
def test_a_manifest_of_the_wrong_shape_is_named_and_explained(store, change, named):
    _rewrite(store, change(_manifest(store)))
    with pytest.raises(StoreDamaged, match=named) as raised:
        cl.open(store.root)
    assert str(store.root / "store.json") in str(raised.value)


def _edit_file(body: dict, **changes) -> dict:
    body["files"][0].update(changes)
    return body


def test_a_manifest_that_is_not_json_is_named(store):
    (store.root / "store.json").write_bytes(b'{"format": \xff')
    with pytest.raises(StoreDamaged, match=r"store\.json' is damaged"):
        cl.open(store.root)


def test_a_missing_file_is_named_and_other_buckets_still_read(store):
    ids = store.events()["aggregate_id"].unique().sort()
    gone = _manifest(store)["files"][0]
    (store.root / gone["path"]).unlink()
    with pytest.raises(StoreDamaged, match=f"{gone['path']}' is listed in store.json but missing"):
        store.events()
    with pytest.raises(StoreDamaged, match="missing"):
        store.scan()
    other = ids.filter(hash_bucket(ids, 8) != gone["bucket"]).head(5).to_list()
    read = store.events(aggregate_ids=other)  # opens only the buckets of those ids
    assert read.height > 0 and set(read["aggregate_id"]) == set(other)


@pytest.mark.parametrize("how", ["flip", "truncate", "zero"])
def test_damaged_bytes_in_a_data_file_fail_naming_it_never_read_as_values(store, how):
    path = _a_file(store)
    store.events()  # verified once: the damage below must still be seen
    data = bytearray(path.read_bytes())
    if how == "flip":
        data[len(data) // 3] ^= 0x01  # inside the column data, where Parquet has no check
    elif how == "truncate":
        data = data[: len(data) // 2]
    else:
        data[100:140] = bytes(40)
    path.write_bytes(bytes(data))
    with pytest.raises(StoreDamaged, match=f"{path.name}' is damaged: .* bytes with SHA-256"):
        store.events()
    before = _manifest(store)
    in_bucket = frame(*(event(f"p{i}", 1, 2) for i in range(40)))
    in_bucket = in_bucket.filter(hash_bucket(in_bucket["aggregate_id"], 8) == int(path.name[1:4]))
    with pytest.raises(StoreDamaged, match=path.name):  # an append never copies damage along
        store.append(in_bucket)
    assert _manifest(store) == before


def test_a_version_1_store_reads_and_its_next_append_records_hashes(store):
    body = _manifest(store)
    body["version"] = 1
    for f in body["files"]:
        del f["bytes"], f["sha256"]
    _rewrite(store, body)
    expected = cl.open(store.root).events()
    assert expected.height > 0
    store.append(frame(event("new-parcel", 1, 2)))
    after = _manifest(store)
    assert after["version"] == 2
    assert all(len(f["sha256"]) == 64 for f in after["files"])
    assert store.events().height == expected.height + 1


def test_data_files_reach_the_disk_before_the_manifest_names_them(store, monkeypatch):
    calls: list[str] = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd):
        calls.append("fsync " + os.readlink(f"/proc/self/fd/{fd}"))
        return real_fsync(fd)

    def replace(src, dst):
        calls.append(f"replace {src} -> {dst}")
        return real_replace(src, dst)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    store.append(frame(event("p-new", 1, 2), event("p-new", 1, 3)))
    manifest_at = next(i for i, c in enumerate(calls) if c.endswith("/store.json"))
    data = [i for i, c in enumerate(calls) if c.startswith("fsync") and ".parquet.tmp" in c]
    renames = [i for i, c in enumerate(calls) if c.startswith("replace") and ".parquet" in c]
    assert len(data) == len(renames) == 2  # the winner and the superseded delivery
    assert all(d < r < manifest_at for d, r in zip(data, renames, strict=True))
    assert calls[manifest_at - 1].startswith("fsync") and ".store.json." in calls[manifest_at - 1]
    assert calls[-1] == "fsync " + str(store.root)  # the rename itself made durable


def test_a_store_from_a_newer_concursus_lab_is_refused_as_a_version(store):
    body = _manifest(store)
    body["version"] = 99
    _rewrite(store, body)
    with pytest.raises(SourceError, match=r"version 99.*Upgrade concursus-lab"):
        cl.open(store.root)
