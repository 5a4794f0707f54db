"""Stack shapes the infra tests synthesize besides cdk.json's (one synth each per session)."""

from __future__ import annotations

# Every setting that changes the template's shape, set away from its default at once:
# resources deleted with the stack, an e-mail subscription, reserved launcher concurrency,
# fewer images kept.
OTHER_SHAPE = {
    "detrain:removalPolicy": "destroy",
    "detrain:notificationEmail": "ops@example.com",
    "detrain:launcherConcurrency": "5",
    "detrain:imagesKept": "3",
}
