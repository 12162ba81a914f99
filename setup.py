"""Build script for the optional compiled gate kernels (rnnlab/_gates.c).

Everything else about the package is declared in pyproject.toml. The extension is
``optional``: where no C compiler is available, or the build fails, pip installs
rnnlab without it and the layers use the pure-NumPy kernels (see rnnlab/kernels/compiled.py).
"""
import platform
import sys

from setuptools import Extension, setup

compile_args, libraries, macros = [], [], []
if sys.platform != "win32":
    # -ffp-contract=off: no fused multiply-adds, so the rounding matches NumPy's ufuncs
    compile_args = ["-O3", "-fopenmp-simd", "-fno-math-errno", "-ffp-contract=off"]
    libraries = ["m"]
if sys.platform.startswith("linux") and platform.machine() in ("x86_64", "AMD64"):
    libraries = ["mvec", "m"]            # glibc's vector math library (SIMD tanh)
    macros = [("RNNLAB_LIBMVEC", "1")]

setup(ext_modules=[Extension("rnnlab._gates", ["rnnlab/_gates.c"], extra_compile_args=compile_args,
                             libraries=libraries, define_macros=macros, optional=True)])
