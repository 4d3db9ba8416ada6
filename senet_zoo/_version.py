"""The package version: the one place it is written (read by the build, ``senet-zoo --version`` and the converter)."""

__version__ = "0.1.0"
