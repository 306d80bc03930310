"""python -m azfunc start: delegates to the installed azfunc executable."""
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

from azfunc import _azfunc
from azfunc.__main__ import executable
from conftest import APPS


def run(*args, env=None):
    return subprocess.run([sys.executable, '-m', 'azfunc', *args], capture_output=True,
                          text=True, env=env, timeout=60)


def test_usage():
    r = run()
    assert r.returncode == 2 and 'usage: python -m azfunc start' in r.stderr
    assert run('decode').returncode == 2


def test_delegates_with_the_venv(tmp_path):
    fake = tmp_path / 'azfunc'
    fake.write_text('#!/bin/sh\necho "argv:$*"\necho "venv:$VIRTUAL_ENV"\necho "plugin:$AZF_PYTHON_PLUGIN"\n')
    fake.chmod(0o755)
    env = dict(os.environ, AZFUNC_EXE=str(fake))
    env.pop('VIRTUAL_ENV', None)
    env.pop('AZF_PYTHON_PLUGIN', None)
    plugin = os.path.join(_azfunc.libdir, 'libazfunc-python%d.%d.so' % sys.version_info[:2])
    r = run('start', 'some/app', '--port', '1234', env=env)
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == ['argv:start some/app --port 1234', f'venv:{sys.prefix}',
                                     f'plugin:{plugin}']
    env['AZFUNC_EXE'] = str(tmp_path / 'missing')
    r = run('start', 'x', env=env)
    assert r.returncode == 1 and 'is not an executable' in r.stderr


def test_default_is_the_installed_prefix():
    assert executable() == os.path.join(_azfunc.prefix, 'bin', 'azfunc')
    assert os.access(executable(), os.X_OK)


def _has_start():
    r = subprocess.run([executable(), '--help'], capture_output=True, text=True)
    return r.returncode == 0 and re.search(r'^\s+start ', r.stdout, re.M) is not None


@pytest.mark.skipif(not _has_start(), reason='the installed azfunc has no start command')
def test_runs_an_app():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        port = s.getsockname()[1]
    p = subprocess.Popen([sys.executable, '-m', 'azfunc', 'start', str(APPS / 'v2_http'),
                          '--port', str(port)], stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, text=True)
    try:
        body, deadline = None, time.monotonic() + 60
        while body is None and time.monotonic() < deadline and p.poll() is None:
            try:
                url = f'http://127.0.0.1:{port}/api/hello?name=py'
                with urllib.request.urlopen(url, timeout=5) as resp:
                    body = resp.read()
            except OSError:
                time.sleep(0.1)
        assert body == b'hello py', p.poll() is not None and p.stdout.read()
    finally:
        p.send_signal(signal.SIGTERM)
        p.wait(30)
