"""The CDK app's constructs (one per file), the stack that composes them, and their pure helpers."""
