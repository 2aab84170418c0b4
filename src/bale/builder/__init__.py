"""Builder: the build graph, cache keys, the solver and step execution."""
