"""The C extensions, which pyproject.toml cannot declare: the AMI parser's hot paths and the
FastAGI environment block's values.

Optional: where they cannot be compiled (no C compiler), the package installs without them and
``ivr.ami._parser`` and ``ivr.agi._parser`` do the same work in Python (see each ``_speedups.c``).
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "ivr.ami._speedups",
            sources=["ivr/ami/_speedups.c"],
            optional=True,
            extra_compile_args=["-O3"],  # -O3: the lowering loop is vectorised
        ),
        Extension(
            "ivr.agi._speedups",
            sources=["ivr/agi/_speedups.c"],
            optional=True,
            extra_compile_args=["-O3"],
        ),
    ]
)
