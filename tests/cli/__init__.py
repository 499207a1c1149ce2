"""The command line's tests, one module per module of graphaudit/cli/, all through ``main()``. A package,
so that its module names (``cli.test_audit``) never clash with those of tests/."""
