"""The one C extension, which pyproject.toml cannot declare: AMI header lookups in C.

Optional: where it cannot be compiled (no C compiler), the package installs without it and
``ivr.ami._parser`` does the same lookup in Python (see ``ivr/ami/_speedups.c``).
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "ivr.ami._speedups",
            sources=["ivr/ami/_speedups.c"],
            optional=True,
            extra_compile_args=["-O2"],
        )
    ]
)
