"""The plugin-author kit: fixtures, a hook recorder, tiny fake components and contract checks.

Installed as a pytest plugin (``pytest11`` entry point ``promptopt``), so a third-party plugin's
own test suite gets the fixtures in :mod:`promptopt.testing.pytest_plugin` for free.
"""
