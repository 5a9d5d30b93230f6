"""Live transfers of calls in progress over AMI: blind, attended, and a three-way call.

Every action answers only when Asterisk confirms (``Response: Success``) and runs under a
timeout. An action whose link drops or whose answer does not come in time is never sent
again: Asterisk may already have carried it out, and a second Redirect moves the caller
twice. Such an outcome is reported as unknown (:class:`TransferOutcomeUnknown`), for a
person to look at the call.

Three-way call (12345 agent, caller, 110), in two steps:

1. ``Originate`` the third party (``Local/<number>@<outbound context>``) straight into
   ``ConfBridge(hotline-<conference>)``, synchronously: Asterisk answers Success only once
   the third party has answered, and Error if it could not be reached (the call is then
   left as it was);
2. ``Redirect`` the caller's channel, with the agent's as ``ExtraChannel``, to
   ``<conference context>,<conference>,1``, where the dialplan runs the same ConfBridge.
   Moving both legs in one Redirect keeps either from being hung up when their bridge
   breaks up.

The conference id is the call's Linkedid without its dot, so it is a plain extension.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Protocol

from call_transfer.errors import TransferError
from ivr.ami.errors import AmiActionError, AmiConnectionLost, AmiNotConnected, AmiTimeout
from ivr.ami.protocol import AmiResponse

__all__ = [
    "AmiSender",
    "LiveTransfers",
    "TransferConfirmed",
    "TransferOutcomeUnknown",
    "TransferRefused",
    "TransferUnavailable",
]

CONFERENCE_CONTEXT = "hotline-conference"
OUTBOUND_CONTEXT = "hotline-outbound"
CONFERENCE_PREFIX = "hotline-"
# Asterisk needs this long at most to answer a synchronous Originate beyond its own
# Timeout (the time the third party may ring).
_ORIGINATE_MARGIN_S = 5.0


class AmiSender(Protocol):
    """The part of :class:`ivr.ami.AmiLink` a transfer needs."""

    async def send_action(
        self, action: Mapping[str, str], *, timeout: float | None = None
    ) -> AmiResponse: ...


class TransferUnavailable(TransferError):
    """Nothing was sent: the node is unknown or its AMI link is down."""


class TransferRefused(TransferError):
    """Asterisk answered with an error: nothing happened to the call."""


class TransferOutcomeUnknown(TransferError):
    """The action was sent but no answer came (link lost or timeout); it is not re-sent."""

    def __init__(self, message: str, *, timed_out: bool) -> None:
        super().__init__(message)
        self.timed_out = timed_out


@dataclass(frozen=True, slots=True)
class TransferConfirmed:
    """Asterisk confirmed the action(s); ``message`` is its last ``Message:`` text."""

    action: str
    message: str


class LiveTransfers:
    """Transfers of live calls; ``link_for_node(node)`` gives that node's AMI link or None."""

    def __init__(
        self,
        link_for_node: Callable[[str], AmiSender | None],
        *,
        conference_context: str = CONFERENCE_CONTEXT,
        outbound_context: str = OUTBOUND_CONTEXT,
    ) -> None:
        self._link_for_node = link_for_node
        self.conference_context = conference_context
        self.outbound_context = outbound_context

    async def blind(
        self, node: str, channel: str, *, context: str, exten: str, timeout: float
    ) -> TransferConfirmed:
        """Move ``channel`` to ``context,exten,1`` with AMI ``Redirect``.

        Redirect works wherever the caller is (IVR, queue, or talking to an agent, whose
        leg then ends), unlike ``BlindTransfer``, which needs a bridge.
        """
        action = {
            "Action": "Redirect",
            "Channel": channel,
            "Context": context,
            "Exten": exten,
            "Priority": "1",
        }
        return await self._send(node, action, timeout)

    async def attended(
        self, node: str, channel: str, *, exten: str, context: str, timeout: float
    ) -> TransferConfirmed:
        """Start an attended transfer from ``channel`` (the agent's leg) with AMI ``Atxfer``.

        Asterisk confirms that the transfer was queued; the agent then talks to the target
        and completes it by hanging up, as with the feature code.
        """
        action = {"Action": "Atxfer", "Channel": channel, "Exten": exten, "Context": context}
        return await self._send(node, action, timeout)

    async def three_way(
        self,
        node: str,
        linkedid: str,
        *,
        caller_channel: str,
        agent_channel: str,
        with_number: str,
        ring_timeout: float,
        timeout: float,
    ) -> TransferConfirmed:
        """Bring ``with_number`` into a conference with the caller and the agent.

        See the module docstring for the two steps. A failure of the first leaves the call
        untouched; an unknown outcome of either is reported as such.
        """
        conference = linkedid.replace(".", "")
        originate = {
            "Action": "Originate",
            "Channel": f"Local/{with_number}@{self.outbound_context}",
            "Application": "ConfBridge",
            "Data": f"{CONFERENCE_PREFIX}{conference}",
            "Timeout": str(int(ring_timeout * 1000)),
            "Async": "false",
        }
        await self._send(node, originate, ring_timeout + _ORIGINATE_MARGIN_S)
        redirect = {
            "Action": "Redirect",
            "Channel": caller_channel,
            "Context": self.conference_context,
            "Exten": conference,
            "Priority": "1",
        }
        if agent_channel:
            redirect |= {
                "ExtraChannel": agent_channel,
                "ExtraContext": self.conference_context,
                "ExtraExten": conference,
                "ExtraPriority": "1",
            }
        return await self._send(node, redirect, timeout)

    async def _send(
        self, node: str, action: Mapping[str, str], timeout: float
    ) -> TransferConfirmed:
        name = action["Action"]
        link = self._link_for_node(node)
        if link is None:
            raise TransferUnavailable(f"no AMI link for node {node!r}")
        try:
            answer = await link.send_action(action, timeout=timeout)
        except AmiNotConnected as exc:
            raise TransferUnavailable(str(exc)) from exc
        except AmiActionError as exc:
            raise TransferRefused(str(exc)) from exc
        except AmiConnectionLost as exc:
            raise TransferOutcomeUnknown(
                f"{name}: AMI link to {node} lost before Asterisk answered", timed_out=False
            ) from exc
        except AmiTimeout as exc:
            raise TransferOutcomeUnknown(
                f"{name}: no answer from {node} within {timeout} s", timed_out=True
            ) from exc
        return TransferConfirmed(name, answer.text)
