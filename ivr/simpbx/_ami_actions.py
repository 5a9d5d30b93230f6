"""The manager actions of the simulated PBX, answered with Asterisk 22's texts."""

from __future__ import annotations

import datetime
import re
import time
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING

from ivr.simpbx._event_filters import FilterError, parse_filter
from ivr.simpbx._events import event_text

if TYPE_CHECKING:
    from ivr.simpbx.ami_server import Action, AmiServer, Session

EVENT_CLASSES = frozenset(
    [
        "system",
        "call",
        "log",
        "verbose",
        "command",
        "agent",
        "user",
        "config",
        "dtmf",
        "reporting",
        "cdr",
        "dialplan",
        "originate",
        "agi",
        "cc",
        "aoc",
        "test",
        "security",
        "message",
    ]
)

_Handler = Callable[["AmiServer", "Session", "Action", str], bool]


def parse_event_mask(text: str) -> frozenset[str]:
    """The event classes a Login ``Events:`` header or an ``Events`` action's mask turns on."""
    value = text.strip().lower()
    if value in ("on", "yes", "true", "all"):
        return EVENT_CLASSES
    if value in ("off", "no", "false", ""):
        return frozenset()
    words = {word.strip() for word in value.split(",")}
    return EVENT_CLASSES if "all" in words else frozenset(words & EVENT_CLASSES)


def _reply(session: Session, aid: str, response: str, body: str) -> None:
    session.writer.write(f"Response: {response}\r\n{aid}{body}\r\n".encode())


def _error(session: Session, aid: str, message: str) -> None:
    _reply(session, aid, "Error", f"Message: {message}\r\n")


def _ack(session: Session, aid: str, message: str) -> None:
    _reply(session, aid, "Success", f"Message: {message}\r\n")


def _security_event(
    server: AmiServer, session: Session, name: str, severity: str, fields: str
) -> None:
    """A security-class event; ``fields`` holds its middle headers with ``{ids}`` and ``{tv}``."""
    if not server.wants("security"):
        return
    now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "+0000"
    host, port = server.address
    peer = session.writer.get_extra_info("peername") or ("127.0.0.1", 0)
    ids = (
        f"SessionID: 0x{id(session):x}\r\nLocalAddress: IPV4/TCP/{host}/{port}\r\n"
        f"RemoteAddress: IPV4/TCP/{peer[0]}/{peer[1]}\r\n"
    )
    body = f"EventTV: {now}\r\nSeverity: {severity}\r\nService: AMI\r\nEventVersion: 1\r\n"
    server.publish("security", event_text(name, "security", body + fields.format(ids=ids, tv=now)))


def dispatch(server: AmiServer, session: Session, action: Action) -> bool:
    """Answer one action on ``session``; returns False when the connection must close."""
    action_id = action.get("ActionID")
    aid = f"ActionID: {action_id}\r\n" if action_id else ""
    name = action.get("Action").lower()
    if not name:
        _error(session, aid, "Missing action in request")
        return True
    if not session.authenticated and name not in ("login", "logoff"):
        _error(session, aid, "Permission denied")
        return True
    handler = _HANDLERS.get(name)
    if handler is None:
        _error(
            session,
            aid,
            f"Invalid/unknown command: {action.get('Action')}. "
            "Use Action: ListCommands to show available commands.",
        )
        request = f"RequestType: Action: {action.get('Action')}\r\n"
        _security_event(
            server,
            session,
            "RequestBadFormat",
            "Error",
            "{ids}"
            + request.replace("{", "{{").replace("}", "}}")
            + "SessionTV: {tv}\r\nAccountID: "
            + server.username
            + "\r\n",
        )
        return True
    return handler(server, session, action, aid)


def _login(server: AmiServer, session: Session, action: Action, aid: str) -> bool:
    if not server.check_login(action.get("Username"), action.get("Secret")):
        _error(session, aid, "Authentication failed")
        return False  # Asterisk drops the connection after a failed login
    session.authenticated = True
    events = action.headers.get("events")
    session.classes = EVENT_CLASSES if events is None else parse_event_mask(events)
    server.session_changed()
    _ack(session, aid, "Authentication accepted")
    if "system" in session.classes:
        uptime = server.uptime
        session.writer.write(
            event_text(
                "FullyBooted",
                "system",
                f"Uptime: {uptime}\r\nLastReload: {uptime}\r\nStatus: Fully Booted\r\n",
            ).encode()
        )
    _security_event(
        server,
        session,
        "SuccessfulAuth",
        "Informational",
        "AccountID: " + server.username + "\r\n{ids}UsingPassword: 0\r\nSessionTV: {tv}\r\n",
    )
    return True


def _logoff(server: AmiServer, session: Session, action: Action, aid: str) -> bool:
    _reply(session, aid, "Goodbye", "Message: Thanks for all the fish.\r\n")
    return False


def _ping(server: AmiServer, session: Session, action: Action, aid: str) -> bool:
    _reply(session, aid, "Success", f"Ping: Pong\r\nTimestamp: {time.time():.6f}\r\n")
    return True


def _events(server: AmiServer, session: Session, action: Action, aid: str) -> bool:
    session.classes = parse_event_mask(action.get("EventMask"))
    server.session_changed()
    _reply(session, aid, "Success", f"Events: {'On' if session.classes else 'Off'}\r\n")
    return True


def _filter(server: AmiServer, session: Session, action: Action, aid: str) -> bool:
    # action_filter() of Asterisk 22: only "Add"; MatchCriteria (advanced filtering, 22.1 and
    # later) wraps into "eventfilter(<criteria>)" as in manager.conf, else a legacy filter.
    if action.get("Operation").lower() != "add":
        _error(session, aid, "Unknown operation")
        return True
    criteria = action.get("MatchCriteria")
    try:
        event_filter = parse_filter(
            f"eventfilter({criteria})" if criteria else "eventfilter", action.get("Filter")
        )
    except FilterError as refused:
        _error(session, aid, refused.answer)
        return True
    session.filters.add(event_filter)
    _ack(session, aid, "Success")
    return True


def _core_show_channels(server: AmiServer, session: Session, action: Action, aid: str) -> bool:
    _reply(session, aid, "Success", "EventList: start\r\nMessage: Channels will follow\r\n")
    channels = list(server.control.live_channels())
    parts = [
        f"Event: CoreShowChannel\r\n{aid}{channel.snapshot()}Application: {channel.application}\r\n"
        f"ApplicationData: {channel.app_data}\r\nDuration: 00:00:00\r\nBridgeId: \r\n\r\n"
        for channel in channels
    ]
    parts.append(
        f"Event: CoreShowChannelsComplete\r\n{aid}EventList: Complete\r\n"
        f"ListItems: {len(channels)}\r\n\r\n"
    )
    session.writer.write("".join(parts).encode())
    return True


def _redirect(server: AmiServer, session: Session, action: Action, aid: str) -> bool:
    channel = action.get("Channel")
    extra = action.get("ExtraChannel")
    live = {c.name for c in server.control.live_channels()}
    if not channel:
        _error(session, aid, "Channel not specified")
    elif channel not in live:
        _error(session, aid, f"Channel does not exist: {channel}")
    elif extra and extra not in live:
        # Asterisk looks the second channel up before moving either.
        _error(session, aid, f"ExtraChannel does not exist: {extra}")
    else:
        server.control.redirect(
            channel, action.get("Context"), action.get("Exten"), action.get("Priority") or "1"
        )
        if extra:
            server.control.redirect(
                extra,
                action.get("ExtraContext") or action.get("Context"),
                action.get("ExtraExten") or action.get("Exten"),
                action.get("ExtraPriority") or action.get("Priority") or "1",
            )
            _ack(session, aid, "Dual Redirect successful")
        else:
            _ack(session, aid, "Redirect successful")
    return True


def _transfer_refusal(server: AmiServer, action: Action) -> str:
    """Why Asterisk refuses a BlindTransfer or Atxfer before trying it, or "" if it does not."""
    channel = action.get("Channel")
    if not channel:
        return "No channel specified"
    if not action.get("Exten"):
        return "No extension specified"
    if channel not in {c.name for c in server.control.live_channels()}:
        return "Channel specified does not exist"
    return ""


def _blind_transfer(server: AmiServer, session: Session, action: Action, aid: str) -> bool:
    # A simulated caller is never in a bridge while it is live (it is in the AGI, then gone),
    # and Asterisk answers a blind transfer of an unbridged channel so.
    _error(session, aid, _transfer_refusal(server, action) or "Transfer invalid")
    return True


def _atxfer(server: AmiServer, session: Session, action: Action, aid: str) -> bool:
    refusal = _transfer_refusal(server, action)
    if refusal:
        _error(session, aid, refusal)
    else:
        # Asterisk only queues the atxfer feature code's DTMF on the channel.
        _ack(session, aid, "Atxfer successfully queued")
    return True


def _hangup(server: AmiServer, session: Session, action: Action, aid: str) -> bool:
    channel = action.get("Channel")
    if not channel:
        _error(session, aid, "No channel specified")
    elif not server.control.hangup(channel):
        _error(session, aid, "No such channel")
    else:
        _ack(session, aid, "Channel Hungup")
    return True


def _getvar(server: AmiServer, session: Session, action: Action, aid: str) -> bool:
    name = action.get("Variable")
    if not name:
        _error(session, aid, "No variable specified")
        return True
    value = server.control.get_variable(action.get("Channel"), name)
    _reply(session, aid, "Success", f"Variable: {name}\r\nValue: {value or ''}\r\n")
    return True


def _setvar(server: AmiServer, session: Session, action: Action, aid: str) -> bool:
    name = action.get("Variable")
    if not name:
        _error(session, aid, "No variable specified")
    elif not server.control.set_variable(action.get("Channel"), name, action.get("Value")):
        _error(session, aid, "No such channel")
    else:
        _ack(session, aid, "Variable Set")
    return True


def _originate(server: AmiServer, session: Session, action: Action, aid: str) -> bool:
    channel = action.get("Channel")
    if not channel:
        _error(session, aid, "Channel not specified")
        return True
    application = action.get("Application")
    if application:
        destination = f"Application: {application}\r\nData: {action.get('Data')}\r\n"
    else:
        destination = f"Context: {action.get('Context')}\r\nExten: {action.get('Exten')}\r\n"
    caller_name, caller_number = _split_caller_id(action.get("CallerID"))
    created = server.control.originate(
        channel,
        action.get("CallerID"),
        destination,
        context="" if application else action.get("Context"),
        variables=originate_variables(action.variables),
    )
    if action.get("Async").lower() not in ("true", "yes", "1", "on"):
        if created is None:
            _error(session, aid, "Originate failed")
        else:
            _ack(session, aid, "Originate successfully queued")
        return True
    _ack(session, aid, "Originate successfully queued")
    if created is None:
        response, name, reason, uniqueid = "Failure", channel, 0, "<unknown>"
        caller_name = caller_number = "<unknown>"
    else:
        response, name, reason, uniqueid = "Success", created.channel, 4, created.uniqueid
    if server.wants("call"):
        server.publish(
            "call",
            event_text(
                "OriginateResponse",
                "call",
                f"{aid}Response: {response}\r\nChannel: {name}\r\n{destination}Reason: {reason}\r\n"
                f"Uniqueid: {uniqueid}\r\nCallerIDNum: {caller_number or '<unknown>'}\r\n"
                f"CallerIDName: {caller_name or '<unknown>'}\r\n",
            ),
        )
    return True


def originate_variables(values: list[str]) -> dict[str, str]:
    """The ``Variable`` headers of an Originate: each holds ``NAME=value`` pairs split at
    commas, as Asterisk's manager reads them; a later setting of a name wins."""
    found: dict[str, str] = {}
    for value in values:
        for pair in value.split(","):
            name, sep, setting = pair.partition("=")
            if sep and name.strip():
                found[name.strip()] = setting
    return found


def _split_caller_id(text: str) -> tuple[str, str]:
    """``"Name" <number>`` -> (name, number)."""
    match = re.fullmatch(r'\s*"?([^"<]*?)"?\s*<([^>]*)>\s*', text)
    if match:
        return match.group(1), match.group(2)
    return "", text.strip()


def _command(server: AmiServer, session: Session, action: Action, aid: str) -> bool:
    text = " ".join(action.get("Command").split())
    if text.lower() == "core show channels":
        live = len(server.control.live_channels())
        output = [
            f"{live} active channels",
            f"{live} of 5000 max active calls ({live / 50:5.2f}% of capacity)",
            f"{server.control.calls_processed()} calls processed",
        ]
    else:
        output = [
            f"No such command '{text}' (type 'core show help {text}' for other possible commands)"
        ]
    lines = "".join(f"Output: {line}\r\n" for line in output)
    _reply(session, aid, "Success", f"Message: Command output follows\r\n{lines}")
    return True


def _queue_status(server: AmiServer, session: Session, action: Action, aid: str) -> bool:
    _reply(session, aid, "Success", "EventList: start\r\nMessage: Queue status will follow\r\n")
    wanted = action.get("Queue")
    stats = [s for s in server.control.queue_stats() if not wanted or s.name == wanted]
    parts = [
        f"Event: QueueParams\r\nQueue: {s.name}\r\nMax: 0\r\nStrategy: ringall\r\n"
        f"Calls: {s.calls}\r\n"
        f"Holdtime: 0\r\nTalkTime: 0\r\nCompleted: {s.completed}\r\nAbandoned: {s.abandoned}\r\n"
        "ServiceLevel: 0\r\nServicelevelPerf: 0.0\r\nServicelevelPerf2: 0.0\r\nWeight: 0\r\n"
        f"{aid}\r\n"
        for s in stats
    ]
    parts.append(
        f"Event: QueueStatusComplete\r\n{aid}EventList: Complete\r\nListItems: {len(stats)}\r\n\r\n"
    )
    session.writer.write("".join(parts).encode())
    return True


_HANDLERS: Mapping[str, _Handler] = MappingProxyType(
    {
        "login": _login,
        "logoff": _logoff,
        "ping": _ping,
        "events": _events,
        "filter": _filter,
        "coreshowchannels": _core_show_channels,
        "redirect": _redirect,
        "blindtransfer": _blind_transfer,
        "atxfer": _atxfer,
        "hangup": _hangup,
        "getvar": _getvar,
        "setvar": _setvar,
        "originate": _originate,
        "command": _command,
        "queuestatus": _queue_status,
    }
)
