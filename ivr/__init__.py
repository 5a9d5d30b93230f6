"""hotline-ivr: call routing and IVR for a 12345 citizen-service hotline beside Asterisk.

Layout, from the wire inwards:

- ``ivr.agi``, ``ivr.ami``: the two Asterisk protocols (pure parsers, then asyncio transports);
- ``ivr.dialplan``: the YAML dialplans, validated into frozen objects;
- ``ivr.engine``: the IVR as a sans-I/O state machine, and legacy-line detection;
- ``call_transfer``: effects on live calls (queue, department, emergency hand-off);
- ``ivr.tickets``: one ticket per call, durably;
- ``ivr.app`` / ``ivr.cli``: wiring and the ``hotline-ivr`` command;
- ``ivr.simpbx``: a simulated Asterisk speaking real AMI and FastAGI, for the demo and tests.
"""

__version__ = "0.1.0"
