"""A small stand-in for the official worker's package, bundled with libazfunc.

Some apps import from the official worker (``from azure_functions_worker import
logging``). Under libazfunc there is no such package; this one offers the parts
apps use: the ``logging`` module's loggers and constants. An app that ships its
own ``azure_functions_worker`` (in its packages) gets its own copy instead.
"""
