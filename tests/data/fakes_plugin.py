"""The kit's fake components as a plugin file, for ``--plugin`` in CLI tests."""

from promptopt.testing.fakes import *  # noqa: F403
