"""Front-end tests. A package, so that pytest never puts tests/frontends/ on sys.path: there, its jax/,
pymc/ and torch/ folders would shadow the frameworks of those names where they are not installed."""
