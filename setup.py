"""The one C extension, which pyproject.toml cannot declare: two hot paths of the AMI parser.

Optional: where it cannot be compiled (no C compiler), the package installs without it and
``ivr.ami._parser`` does the same work in Python (see ``ivr/ami/_speedups.c``).
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "ivr.ami._speedups",
            sources=["ivr/ami/_speedups.c"],
            optional=True,
            extra_compile_args=["-O3"],  # -O3: the lowering loop is vectorised
        )
    ]
)
