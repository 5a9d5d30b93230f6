"""A simulated Asterisk 22 for tests, benchmarks and the demo: real AMI and FastAGI on loopback.

The PBX connects to the service's FastAGI server as Asterisk does and serves AMI to the
service's manager client; callers follow scripts, and time is virtual.
"""

from ivr.simpbx.agi_caller import AgiTarget
from ivr.simpbx.ami_server import ActionRecord, AmiServer
from ivr.simpbx.errors import PbxNotRunningError, ScriptError, SimPbxError
from ivr.simpbx.pbx import CallRecord, OriginateRecord, SimulatedPbx, place_calls
from ivr.simpbx.script import CallScript

__all__ = [
    "ActionRecord",
    "AgiTarget",
    "AmiServer",
    "CallRecord",
    "CallScript",
    "OriginateRecord",
    "PbxNotRunningError",
    "ScriptError",
    "SimPbxError",
    "SimulatedPbx",
    "place_calls",
]
