"""Build the one compiled module: the record appender (aioproducer/_records/_speedups.c) and
the record handles (aioproducer/_records/_handle.c).

Everything else is in pyproject.toml. The extension is optional: without a C compiler the
package installs and runs on the pure-Python appender (tests/unit/test_speedups.py fails in CI
when the compiled one is missing, so CI never runs on the fallback by accident).
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "aioproducer._records._speedups",
            ["aioproducer/_records/_speedups.c", "aioproducer/_records/_handle.c"],
            extra_compile_args=["-O2"],
            optional=True,
        )
    ]
)
