"""Builds libgptneox.so with `make` and ships it inside the neox_cpp package.

The engine is plain C++ built by the Makefile (no Python extension module): a stub Extension makes
setuptools run build_ext for both `pip install .` and `pip install -e .`, and our build_ext runs make
and copies the library next to neox_cpp/__init__.py (in the build tree, or in place for editable installs).
"""

import os
import shutil
import subprocess

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext


class MakeBuildExt(build_ext):
    def build_extension(self, ext: Extension) -> None:
        root = os.path.dirname(os.path.abspath(__file__))
        jobs = str(os.cpu_count() or 2)
        subprocess.check_call(["make", "-C", root, "-j", jobs, "libgptneox.so"])
        target = self.get_ext_fullpath(ext.name)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        shutil.copyfile(os.path.join(root, "libgptneox.so"), target)

    def get_ext_filename(self, fullname: str) -> str:
        # A plain shared library, not a CPython extension: no ABI tag in its name.
        return os.path.join(*fullname.split(".")) + ".so"


setup(
    ext_modules=[Extension("neox_cpp.libgptneox", sources=[])],
    cmdclass={"build_ext": MakeBuildExt},
)
