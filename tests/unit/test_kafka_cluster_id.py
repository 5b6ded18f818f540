"""The Kafka service's cluster id: Kafka's own rule, so the storage tool never mistakes it."""

import base64

from concursus_lab.services._kafka import cluster_id


def test_an_id_that_would_start_with_a_dash_is_drawn_again():
    dashed = bytes([0xF8]) + bytes(15)  # base64url of 0b111110... starts with "-"
    plain = bytes(range(16))
    assert base64.urlsafe_b64encode(dashed).decode().startswith("-")
    draws = iter([dashed, dashed, plain])
    got = cluster_id(lambda: next(draws))
    assert got == base64.urlsafe_b64encode(plain).decode().rstrip("=")
    assert next(draws, None) is None


def test_ids_are_22_characters_of_base64url():
    ids = {cluster_id() for _ in range(500)}
    assert len(ids) == 500
    assert all(len(i) == 22 and not i.startswith("-") for i in ids)
    alphabet = set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
    assert all(set(i) <= alphabet for i in ids)
