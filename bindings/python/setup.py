"""Builds azfunc._azfunc against an installed libazfunc found with pkg-config.

The extension is also the Python adapter plugin in extension mode: it compiles
the adapter sources of the libazfunc tree it sits in (src/python/plugin.c,
invoke.c and adapter.py), so `pip install ./bindings/python` must run from a
checkout. libpython is not linked (the running interpreter provides it)."""
import os
import pathlib
import shlex
import shutil
import subprocess

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

HERE = pathlib.Path(__file__).resolve().parent
ROOT = HERE.parent.parent
ADAPTER = ROOT / 'src' / 'python'


def pkg_config(*args):
    try:
        out = subprocess.run(['pkg-config', *args, 'azfunc'], check=True,
                             capture_output=True, text=True).stdout
    except (OSError, subprocess.CalledProcessError) as exc:
        raise SystemExit('azfunc: libazfunc not found with pkg-config '
                         '(install it and set PKG_CONFIG_PATH): '
                         f'{getattr(exc, "stderr", exc)}')
    return shlex.split(out)


def adapter_sources():
    """The adapter's C files, copied unchanged into build/gen (setuptools takes
    only relative paths inside the project), and adapter.py as a C string, as
    src/python/CMakeLists.txt generates it."""
    gen = HERE / 'build' / 'gen'
    gen.mkdir(parents=True, exist_ok=True)
    for name in ('plugin.c', 'invoke.c'):
        shutil.copyfile(ADAPTER / name, gen / name)
    data = (ADAPTER / 'adapter.py').read_bytes()
    body = ','.join(f'0x{b:02x}' for b in data)
    (gen / 'adapter_py.h').write_text(
        '/* Generated from src/python/adapter.py by setup.py. */\n'
        f'static const char azf__adapter_py[] = {{{body},0x00}};\n')
    return [str((gen / n).relative_to(HERE)) for n in ('plugin.c', 'invoke.c')]


if not (ADAPTER / 'plugin.c').exists():
    raise SystemExit(f'azfunc: the adapter sources are not in {ADAPTER}; '
                     'build from a libazfunc checkout')

cflags = pkg_config('--cflags')
libs = pkg_config('--libs')
prefix = os.path.normpath(pkg_config('--variable=prefix')[0])
libdir = os.path.normpath(pkg_config('--variable=libdir')[0])
libdirs = [os.path.normpath(f[2:]) for f in libs if f.startswith('-L')]
ext = Extension(
    'azfunc._azfunc',
    sources=['src/azfunc/_azfunc.c', *adapter_sources()],
    include_dirs=[str(ROOT / 'src')],
    extra_compile_args=cflags + [f'-DAZFUNC_PREFIX="{prefix}"', f'-DAZFUNC_LIBDIR="{libdir}"', '-std=c11', '-D_GNU_SOURCE', '-Wall', '-Wextra',
                                 '-Wno-missing-field-initializers'],
    extra_link_args=libs + ['-lpthread'],
    # The installed prefix is found again at run time without LD_LIBRARY_PATH.
    runtime_library_dirs=libdirs,
)


class BuildExt(build_ext):
    """Always rebuilds: the prefix (RPATH, AZFUNC_PREFIX) may have changed
    while the sources did not."""

    def finalize_options(self):
        super().finalize_options()
        self.force = True


setup(ext_modules=[ext], cmdclass={'build_ext': BuildExt})
