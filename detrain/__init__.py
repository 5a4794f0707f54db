"""detrain: the operator CLI and the local runner for the SageMaker object-detection platform."""
