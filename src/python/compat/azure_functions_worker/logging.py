"""The official worker's ``azure_functions_worker.logging``, as apps use it.

Records of these loggers reach the host as System logs, as the official
worker's do (libazfunc routes the ``azure_functions_worker`` logger names).
"""
import logging

CONSOLE_LOG_PREFIX = 'LanguageWorkerConsoleLog'
SYSTEM_LOG_PREFIX = 'azure_functions_worker'
SDK_LOG_PREFIX = 'azure.functions'

logger = logging.getLogger(SYSTEM_LOG_PREFIX)
error_logger = logging.getLogger(SYSTEM_LOG_PREFIX + '_errors')


def is_system_log_category(ctg):
    """True for the categories the host shows as System logs."""
    return ctg.startswith((SYSTEM_LOG_PREFIX, SDK_LOG_PREFIX))


def setup(log_level, log_destination):
    """The worker sets up its own logging; nothing to do here."""


def enable_console_logging():
    """Console logging is azfunc-worker's: nothing to do here."""


def disable_console_logging():
    """Console logging is azfunc-worker's: nothing to do here."""
