"""The sync pool's threads (PYTHON_THREADPOOL_THREAD_COUNT) as a user sees them: a function
that blocks gets company up to the thread count, and one that keeps the GIL busy does not
hold back the others. Through the host simulator against azfunc-worker."""
import time

from azhost import pb
from test_invocations import SUCCESS, http, v2_host


def started(inv):
    return any(lg.message == "blocking" for lg in inv.logs)


def test_blocked_functions_get_company_up_to_the_thread_count(tmp_path, make_host, worker_exe):
    h, ids = v2_host(tmp_path, lambda *a, **kw: make_host(*a, env={"PYTHON_THREADPOOL_THREAD_COUNT": "2"}, **kw),
                     worker_exe)
    markers = [tmp_path / f"release-{i}" for i in range(3)]
    invs = [h.start_invocation(ids["block"], http(query={"marker": str(m)})) for m in markers]
    h.wait_for(lambda: sum(map(started, invs)) == 2, "two blocked functions running side by side")
    time.sleep(0.3)
    assert sum(map(started, invs)) == 2  # the third waits for a thread
    first = next(i for i, inv in enumerate(invs) if started(inv))
    markers[first].touch()
    assert invs[first].wait().result.status == SUCCESS
    h.wait_for(lambda: all(map(started, invs)), "the third to start on the freed thread")
    for m in markers:
        m.touch()
    assert all(inv.wait().result.status == SUCCESS for inv in invs)


def test_a_busy_gil_does_not_hold_back_other_functions(tmp_path, make_host, worker_exe):
    h, ids = v2_host(tmp_path, make_host, worker_exe)
    spinner = h.start_invocation(ids["spin"], http(query={"seconds": "3"}))
    h.wait_for(lambda: any(lg.message == "spinning" for lg in spinner.logs), "the spinner to start")
    t0 = time.monotonic()
    r = h.invoke(ids["hello"], http(query={"name": "x"})).response
    assert r.result.status == SUCCESS, r.result.exception.message
    # Another thread steps in and CPython's switch interval shares the GIL with it.
    assert spinner.response is None, "hello waited for the spinner"
    assert time.monotonic() - t0 < 2
    assert spinner.wait().result.status == SUCCESS
