"""An example promptopt plugin: the ``greedy-score`` selector
(:mod:`promptopt_example_selector.selector`). Nothing is imported here, so loading the plugin
module stays cheap."""
