"""APE (Zhou et al., "Large Language Models Are Human-Level Prompt Engineers", ICLR 2023) as a
promptopt plugin: method, proposer, loss extractor and selector, all named ``ape``. Nothing is
imported here, so loading the plugin module stays cheap."""
