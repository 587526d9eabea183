"""A path plugin that interrupts a run after step 1, as Ctrl-C would (used by the resume test)."""

import promptopt


@promptopt.hookimpl
def step_end(run, record):  # type: ignore[no-untyped-def]
    if record.step == 1 and not run.resumed:
        raise KeyboardInterrupt
