"""telemetry.py (trace-context propagation) and httpstream.py (HTTP streaming): their
settings and checks, without the plugin."""

import sys

import pytest

TP = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


@pytest.fixture
def env(monkeypatch):
    for name in ("PYTHON_ENABLE_OPENTELEMETRY", "PYTHON_APPLICATIONINSIGHTS_ENABLE_TELEMETRY",
                 "PYTHON_ENABLE_INIT_INDEXING"):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def test_telemetry_off_by_default(telemetry, env):
    assert telemetry.set_up() == {}
    assert telemetry.attach(TP, "") is None


def test_telemetry_propagates_the_parent(telemetry, env):
    pytest.importorskip("opentelemetry.trace")
    from opentelemetry import trace
    env.setenv("PYTHON_ENABLE_OPENTELEMETRY", "Yes")
    assert telemetry.set_up() == {"WorkerOpenTelemetryEnabled": "true"}
    token = telemetry.attach(TP, "k=v")
    try:
        parent = trace.get_current_span().get_span_context()
        assert format(parent.trace_id, "032x") == TP[3:35]
        assert format(parent.span_id, "016x") == TP[36:52]
        assert parent.trace_state.get("k") == "v"
    finally:
        telemetry.detach(token)
    assert not trace.get_current_span().get_span_context().is_valid
    assert telemetry.attach("", "") is None  # no trace context: nothing attached
    env.delenv("PYTHON_ENABLE_OPENTELEMETRY")
    assert telemetry.set_up() == {}  # an env reload turns it off again


def test_missing_distro_is_logged_not_raised(telemetry, env, caplog):
    env.setenv("PYTHON_APPLICATIONINSIGHTS_ENABLE_TELEMETRY", "1")
    if "azure.monitor.opentelemetry" in sys.modules:
        pytest.skip("the distro is installed here")
    assert telemetry.set_up() == {}
    assert "azure-monitor-opentelemetry" in caplog.text


def test_init_indexing_setting(httpstream, env):
    assert httpstream.init_indexing() == (sys.version_info >= (3, 13))
    env.setenv("PYTHON_ENABLE_INIT_INDEXING", " TRUE ")
    assert httpstream.init_indexing()


@pytest.fixture
def extension(monkeypatch):
    """The FastAPI extension imported, its registration undone afterwards (the trackers
    are process-wide; other adapter tests expect no HTTP extension)."""
    base = pytest.importorskip("azurefunctions.extensions.base")
    for cls, attr in ((base.ModuleTrackerMeta, "_module"),
                      (base.RequestTrackerMeta, "_request_type"),
                      (base.RequestTrackerMeta, "_synchronizer"),
                      (base.ResponseTrackerMeta, "_response_types")):
        old = getattr(cls, attr, None)
        monkeypatch.setattr(cls, attr, dict(old) if isinstance(old, dict) else old,
                            raising=False)
    return pytest.importorskip("azurefunctions.extensions.http.fastapi")


def test_extension_types_only_for_http(httpstream, extension):
    ext = extension
    assert httpstream.base() is not None  # importing the extension registered it
    assert httpstream.accepts("httpTrigger", ext.Request)
    assert not httpstream.accepts("queueTrigger", ext.Request)
    import fastapi.responses
    assert httpstream.accepts("http", fastapi.responses.StreamingResponse, True)
    assert not httpstream.accepts("http", fastapi.responses.StreamingResponse)
    assert not httpstream.accepts("httpTrigger", str)
