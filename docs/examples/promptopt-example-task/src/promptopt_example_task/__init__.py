"""An example promptopt plugin: the ``example/compare`` task
(:mod:`promptopt_example_task.task`). Nothing is imported here, so loading the plugin module
stays cheap."""
