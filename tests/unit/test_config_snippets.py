"""Every ``.config()`` snippet parses: Java by javac's own parser (Java 17, no engine jars
needed to parse), Python by ``ast``; and says what was recommended."""

from __future__ import annotations

import ast
import shutil
import subprocess

import polars as pl
import pytest

import concursus_lab as cl
from concursus_lab.delivery.engines._snippets import java_duration, spark_interval
from concursus_lab.exceptions import SchemaError
from tests.unit.test_engines import hot_history

#: Parses Java source from stdin with the JDK's compiler API; prints errors, exits 1 on any.
PARSER = """
import com.sun.source.util.JavacTask;
import java.net.URI;
import java.util.List;
import javax.tools.*;

public class ParseJava {
    public static void main(String[] args) throws Exception {
        String source = new String(System.in.readAllBytes());
        JavaFileObject file = new SimpleJavaFileObject(
                URI.create("string:///Snippet.java"), JavaFileObject.Kind.SOURCE) {
            @Override
            public CharSequence getCharContent(boolean ignore) { return source; }
        };
        DiagnosticCollector<JavaFileObject> found = new DiagnosticCollector<>();
        JavacTask task = (JavacTask) ToolProvider.getSystemJavaCompiler()
                .getTask(null, null, found, List.of("-proc:none"), null, List.of(file));
        task.parse();
        boolean bad = false;
        for (Diagnostic<?> d : found.getDiagnostics()) {
            if (d.getKind() == Diagnostic.Kind.ERROR) { System.out.println(d); bad = true; }
        }
        System.exit(bad ? 1 : 0);
    }
}
"""


@pytest.fixture(scope="module")
def parse_java(tmp_path_factory):
    java = shutil.which("java")
    if java is None:
        pytest.fail("these tests parse Java with the JDK: install Java 17 (the test command does)")
    parser = tmp_path_factory.mktemp("java") / "ParseJava.java"
    parser.write_text(PARSER)

    def parse(snippet: str) -> str:
        wrapped = "class Snippet {\n    void paste() {\n" + snippet + "\n    }\n}\n"
        run = subprocess.run(
            [java, str(parser)], input=wrapped, capture_output=True, text=True, timeout=120
        )
        return "" if run.returncode == 0 else run.stdout + run.stderr

    return parse


def test_the_java_parser_catches_a_broken_snippet(parse_java):
    assert parse_java("Duration d = Duration.ofMillis(5);") == ""
    assert parse_java("Duration d = Duration.ofMillis(5)") != ""  # no semicolon


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"idle_timeout": "2h"},
        {"window": "10m", "allowed_lateness": "1h"},
        {"window": "10m", "slide": "5m", "interval": "1s", "idle_timeout": "90s"},
    ],
)
def test_flink_snippets_parse_as_java(parse_java, kwargs):
    advice = cl.recommend_watermark(hot_history(), keep=0.9, engine="flink", **kwargs)
    snippet = advice.config()
    assert parse_java(snippet) == ""
    assert "forBoundedOutOfOrderness(" in snippet
    if "idle_timeout" in kwargs:
        assert ".withIdleness(Duration.of" in snippet
    if "slide" in kwargs:
        assert (
            "SlidingEventTimeWindows.of(Duration.ofMinutes(10), Duration.ofMinutes(5))" in snippet
        )
    if "allowed_lateness" in kwargs:
        assert "Duration allowedLateness = Duration.ofHours(1);" in snippet


@pytest.mark.parametrize(
    "kwargs", [{}, {"window": "10m"}, {"window": "10m", "slide": "5m"}, {"grace": None}]
)
def test_kafka_streams_snippets_parse_as_java(parse_java, kwargs):
    kwargs = {k: v for k, v in kwargs.items() if v is not None}
    advice = cl.recommend_watermark(hot_history(), keep=1.0, engine="kafka-streams", **kwargs)
    snippet = advice.config()
    assert parse_java(snippet) == ""
    grace = java_duration(advice.bound)
    assert f"TimeWindows.ofSizeAndGrace(windowSize, {grace})" in snippet
    if not kwargs:  # the straggler, 15 s behind its task
        assert grace == "Duration.ofSeconds(15)"
    if "slide" in kwargs:
        assert ".advanceBy(Duration.ofMinutes(5))" in snippet


def test_kafka_streams_without_grace_has_no_grace(parse_java):
    in_order = hot_history().filter(pl.col("kafka_partition") == 1)
    snippet = cl.recommend_watermark(in_order, keep=1.0, engine="kafka-streams").config()
    assert "TimeWindows.ofSizeWithNoGrace(windowSize)" in snippet
    assert parse_java(snippet) == ""


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"window": "10m"},
        {"window": "10m", "slide": "5m", "trigger": "30s"},
        {"inputs": "stream_id", "policy": "max"},
    ],
)
def test_spark_snippets_parse_as_python(kwargs):
    advice = cl.recommend_watermark(hot_history(), keep=1.0, engine="spark", **kwargs)
    snippet = advice.config()
    tree = ast.parse(snippet)
    calls = {
        n.func.attr for n in ast.walk(tree) if isinstance(n, ast.Call) and hasattr(n.func, "attr")
    }
    assert "withWatermark" in calls
    assert f'withWatermark("event_timestamp", "{spark_interval(advice.bound)}")' in snippet
    if "window" not in kwargs:
        assert '"1015001 milliseconds"' in snippet
    if "window" in kwargs:
        assert {"window", "groupBy", "trigger"} <= calls
    if "slide" in kwargs:
        assert 'F.window("event_timestamp", "10 minutes", "5 minutes")' in snippet
        assert 'processingTime="30 seconds"' in snippet
    if "policy" in kwargs:
        assert '"spark.sql.streaming.multipleWatermarkPolicy", "max"' in snippet


def test_the_model_has_no_configuration():
    with pytest.raises(SchemaError, match="engine='model' is concursus-lab's own model"):
        cl.recommend_watermark(hot_history()).config()
