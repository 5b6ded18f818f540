"""What the Spark readers hand the connectors, checked without starting Spark."""

from __future__ import annotations

import importlib

from concursus_lab.spark import kafka

session = importlib.import_module("concursus_lab.spark.session")  # the module, not cls.session


def test_kafka_security_settings_become_the_kafka_sources_options():
    options = kafka._security(
        {
            "security_protocol": "SASL_SSL",
            "sasl_mechanism": "SCRAM-SHA-512",
            "sasl_plain_username": "reader",
            "sasl_plain_password": "s3cret",
            "ssl_cafile": "/etc/ca.pem",
        }
    )
    assert options["kafka.security.protocol"] == "SASL_SSL"
    assert options["kafka.sasl.mechanism"] == "SCRAM-SHA-512"
    assert options["kafka.ssl.truststore.location"] == "/etc/ca.pem"
    assert options["kafka.ssl.truststore.type"] == "PEM"
    assert options["kafka.sasl.jaas.config"] == (
        "org.apache.kafka.common.security.scram.ScramLoginModule required "
        'username="reader" password="s3cret";'
    )
    assert kafka._security({}) == {}


def test_the_packages_for_a_cluster_of_your_own_are_the_poms():
    pom = session.POM.read_text()
    for package in session.PACKAGES:
        group, artifact, version = package.split(":")
        assert f"<groupId>{group}</groupId>" in pom
        assert f"<artifactId>{artifact}</artifactId>" in pom and version in pom
    assert "jaas" in session.SETTINGS["spark.sql.redaction.options.regex"]
