"""Checks, at import time, the interpreter the adapter prepared for the app."""
import os
import signal
import sys

import azure.functions as func
import vendored_probe

here = os.path.dirname(os.path.abspath(__file__))
packages = os.path.join(here, ".python_packages", "lib", "site-packages")

# sys.path in the official worker's order: the app's .python_packages, the
# stdlib, the venv (if any), libazfunc's bundled site-packages (if built), the
# app root last.
tail = [p for p in sys.path[2:-1] if not p.startswith(sys.base_prefix)]
stdlib = sys.path[2:sys.path.index(tail[0])] if tail else sys.path[2:-1]
venv = [p for p in tail if p.endswith(".venv/lib/python%d.%d/site-packages" % sys.version_info[:2])]
bundled = [p for p in tail if p.endswith("azfunc/python%d.%d/site-packages" % sys.version_info[:2])]
assert sys.path[0] == packages, sys.path
assert sys.path[1] == os.path.join(here, ".python_packages", "lib", "python%d.%d" % sys.version_info[:2], "site-packages"), sys.path
assert stdlib and all(p.startswith(sys.base_prefix) for p in stdlib), sys.path
assert tail == venv + bundled and len(venv) <= 1, sys.path
assert sys.path[-1] == here, sys.path
assert not any("dist-packages" in p for p in sys.path), sys.path
assert vendored_probe.WHERE == "python_packages"
assert func.__file__.startswith(tail[0]), func.__file__  # the app's copy wins

# An isolated configuration, and no signal handlers installed by Python: the
# process-level dispositions of SIGINT and SIGPIPE stay the host's (default).
assert sys.flags.isolated == 1 and sys.flags.ignore_environment == 1
with open("/proc/self/status") as status:
    masks = dict(line.split(":\t", 1) for line in status if line.startswith("Sig"))
for name in ("SigCgt", "SigIgn"):
    for sig in (signal.SIGINT, signal.SIGPIPE):
        assert not int(masks[name], 16) & (1 << (sig - 1)), (name, sig, masks[name])

app = func.FunctionApp()


@app.timer_trigger(schedule="*/30 * * * * *", arg_name="timer")
def probe(timer: func.TimerRequest) -> None:
    pass
