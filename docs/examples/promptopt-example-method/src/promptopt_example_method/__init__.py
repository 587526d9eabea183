"""An example promptopt plugin: the ``phrase-search`` method (:mod:`.method`) with its proposer
(:mod:`.proposer`), loss extractor (:mod:`.loss`) and selector (:mod:`.selector`). Nothing is
imported here, so loading the plugin module stays cheap."""
