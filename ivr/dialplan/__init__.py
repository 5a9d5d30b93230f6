"""YAML dialplans: the lines, menus, queues and emergency routes PBX admins describe.

:func:`load_dialplan` validates files into a frozen :class:`Dialplan` or raises
:class:`DialplanError` naming the file, line, column and key path of every mistake.
"""

from ivr.dialplan.errors import DialplanError, Problem
from ivr.dialplan.loader import load_dialplan
from ivr.dialplan.model import (
    Action,
    ActionKind,
    Department,
    Dialplan,
    DialTarget,
    EmergencyService,
    Line,
    Menu,
    Prompt,
    Queue,
    Schedule,
    TimeRange,
)

__all__ = [
    "Action",
    "ActionKind",
    "Department",
    "DialTarget",
    "Dialplan",
    "DialplanError",
    "EmergencyService",
    "Line",
    "Menu",
    "Problem",
    "Prompt",
    "Queue",
    "Schedule",
    "TimeRange",
    "load_dialplan",
]
