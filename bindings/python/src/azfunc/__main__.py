"""python -m azfunc start DIR [options]: the local runner (`azfunc start`) of
the installed libazfunc, with this interpreter's virtual environment."""
import os
import sys

from . import _azfunc

USAGE = 'usage: python -m azfunc start APP_DIR [azfunc start options]'


def executable():
    """The azfunc executable: $AZFUNC_EXE, else <prefix>/bin/azfunc of the
    libazfunc this package was built against."""
    return os.environ.get('AZFUNC_EXE') or os.path.join(_azfunc.prefix, 'bin', 'azfunc')


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] != 'start':
        print(USAGE, file=sys.stderr)
        return 2
    exe = executable()
    if not os.access(exe, os.X_OK):
        print(f'azfunc: {exe} is not an executable (set AZFUNC_EXE)', file=sys.stderr)
        return 1
    if sys.prefix != sys.base_prefix:  # the runner's Python uses our venv
        os.environ.setdefault('VIRTUAL_ENV', sys.prefix)
    # ...and this interpreter's version, from the prefix (which may have moved
    # since it was configured).
    plugin = os.path.join(_azfunc.libdir, 'libazfunc-python%d.%d.so' % sys.version_info[:2])
    if 'AZF_PYTHON_PLUGIN' not in os.environ and os.path.exists(plugin):
        os.environ['AZF_PYTHON_PLUGIN'] = plugin
    sys.stdout.flush()
    os.execv(exe, [exe, *argv])


if __name__ == '__main__':
    sys.exit(main())
