"""An example promptopt plugin: the ``ngram`` backend (:mod:`.backend`), a character n-gram
model (:mod:`.ngram`). Nothing is imported here, so loading the plugin module stays cheap."""
