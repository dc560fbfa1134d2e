"""Use cases: each takes its ports (repositories, providers, clock) as arguments."""
