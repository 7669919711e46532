"""Images and layered storage (issue 5): content-addressed store, layer drivers, ID shifting."""
