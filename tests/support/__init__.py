"""Helpers that the test layers share: fake /opt/ml trees, generated datasets, the worlds the
CLI and the launcher run in. Test modules import these, never one another."""
