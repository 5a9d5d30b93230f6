"""Effects on live calls: queue and department transfers, emergency hand-off, AMI transfers."""
