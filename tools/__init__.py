"""Developer tools: benchmarks (tools/bench) and, later, the push CLI."""
