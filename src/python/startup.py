"""libazfunc Python adapter, worker start: what WorkerInitRequest and an
environment reload set up from the settings (host-protocol.md §3.3, §3.8):
init indexing and the HTTP streaming server (httpstream.py), OpenTelemetry
(telemetry.py). Returns the capabilities to advertise, as a flat
[name, value, ...] list for the plugin."""

import os

import _azfunc_httpstream as httpstream
import _azfunc_indexing as indexing
import _azfunc_invocation as invocation
import _azfunc_telemetry as telemetry


def init_app(app_dir, host):
    caps = {}
    # Only an app with its script is indexed now: a placeholder's empty
    # directory must not fix the (cached) index before the real app comes.
    script = indexing._script_file_name(None)
    if app_dir and httpstream.init_indexing() \
            and os.path.isfile(os.path.join(app_dir, script)):
        try:
            indexing.index(app_dir)
        except BaseException:
            pass  # remembered; the metadata request reports it (§3.3 step 6)
    # Serve HTTP when the (already) indexed app imported an HTTP extension:
    # after init indexing here, or an app that azfunc start has opened.
    caps.update(httpstream.start(invocation._loop, host))
    caps.update(telemetry.set_up())
    return [x for kv in caps.items() for x in kv]
