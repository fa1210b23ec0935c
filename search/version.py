"""The release of dualsearch (read by setuptools at build time, and by ``dualsearch --version``)."""

__version__ = "0.8.0"
