"""libazfunc: OpenTelemetry for invocations (host-protocol.md §7, §10 item 20).

Settings, read at WorkerInitRequest and again after an environment reload:
  PYTHON_ENABLE_OPENTELEMETRY                   propagate the host's trace context
                                                into every invocation
  PYTHON_APPLICATIONINSIGHTS_ENABLE_TELEMETRY   configure the Azure Monitor distro
  PYTHON_APPLICATIONINSIGHTS_LOGGER_NAME        the logger the distro collects from
  (PYTHON_AZURE_MONITOR_LOGGER_NAME, the older name, is read when the newer is unset)
  APPLICATIONINSIGHTS_CONNECTION_STRING         passed to the distro

opentelemetry-api and the distro are the app's packages: nothing here imports
them unless a setting asks for them, and a missing package is a System log,
never an error.
"""

import logging
import os

from _azfunc_common import env_true

CAPABILITY = 'WorkerOpenTelemetryEnabled'

_log = logging.getLogger('azure_functions_worker')
_propagator = None      # TraceContextTextMapPropagator when propagation is on
_context_api = None     # opentelemetry.context


def _import_api():
    """The W3C propagator and the context API, or None when not installed."""
    try:
        from opentelemetry import context
        from opentelemetry.trace.propagation.tracecontext import (
            TraceContextTextMapPropagator)
    except ImportError as exc:
        _log.warning('OpenTelemetry is enabled but opentelemetry-api cannot be '
                     'imported (%s: %s): install opentelemetry-api in the app '
                     'to propagate the trace context', type(exc).__name__, exc)
        return None
    return TraceContextTextMapPropagator(), context


def _configure_distro():
    """configure_azure_monitor(...) as the settings say; True when it ran."""
    try:
        from azure.monitor.opentelemetry import configure_azure_monitor
    except ImportError as exc:
        _log.error('PYTHON_APPLICATIONINSIGHTS_ENABLE_TELEMETRY is set but the '
                   'Azure Monitor distro cannot be imported (%s: %s): install '
                   'azure-monitor-opentelemetry in the app',
                   type(exc).__name__, exc)
        return False
    os.environ.setdefault('OTEL_EXPERIMENTAL_RESOURCE_DETECTORS',
                          'azure_functions')
    logger_name = (os.environ.get('PYTHON_APPLICATIONINSIGHTS_LOGGER_NAME')
                   or os.environ.get('PYTHON_AZURE_MONITOR_LOGGER_NAME', ''))
    try:
        configure_azure_monitor(
            connection_string=os.environ.get(
                'APPLICATIONINSIGHTS_CONNECTION_STRING'),
            logger_name=logger_name)
    except Exception:
        _log.exception('the Azure Monitor distro failed to configure')
        return False
    _log.info('configured the Azure Monitor distro')
    return True


def set_up():
    """Reads the settings; returns the capabilities to advertise."""
    global _propagator, _context_api
    _propagator = _context_api = None
    distro = (env_true('PYTHON_APPLICATIONINSIGHTS_ENABLE_TELEMETRY')
              and _configure_distro())
    if not (distro or env_true('PYTHON_ENABLE_OPENTELEMETRY')):
        return {}
    api = _import_api()
    if api is not None:
        _propagator, _context_api = api
    elif not distro:
        return {}
    return {CAPABILITY: 'true'}


def attach(trace_parent, trace_state):
    """Makes the host's span the current parent on this thread or task.
    Returns a token for detach(), or None when propagation is off."""
    if _propagator is None or not trace_parent:
        return None
    carrier = {'traceparent': trace_parent}
    if trace_state:
        carrier['tracestate'] = trace_state
    try:
        return _context_api.attach(_propagator.extract(carrier))
    except Exception:
        _log.exception('cannot attach the invocation trace context')
        return None


def detach(token):
    if token is not None:
        try:
            _context_api.detach(token)
        except Exception:
            pass
