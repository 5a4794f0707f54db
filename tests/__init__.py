"""The test suite (a package, so that ``tests.support`` is this repository's, not a
dependency's top-level ``tests``)."""
