"""The call simulator: talking user agents, load generation and the speech they play.

Nothing in the server imports this package; tests, benchmarks and the demo do.
"""
