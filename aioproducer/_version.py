"""The package version, written here and nowhere else.

``pyproject.toml`` declares the version ``dynamic`` and setuptools reads this assignment (as
text, without importing the package) into the wheel's and the editable install's metadata;
``aioproducer.__version__``, the CLI's ``--version`` and the client software version sent to
brokers (KIP-511) import it from here.
"""

__version__ = "0.1.0.dev0"
