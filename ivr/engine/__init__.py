"""The IVR engine: a sans-I/O state machine over a validated dialplan."""
