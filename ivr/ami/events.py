"""The AMI events the service listens to: one list for the link's filter and manager.conf."""

from ivr.ami.queues import QUEUE_EVENTS
from ivr.ami.tracker import TRACKED_EVENTS

#: The call tracker's events, the queue figures' (AgentConnect), and the answer to an
#: asynchronous Originate (callbacks, three-way calls). Listings that answer our own actions
#: (CoreShowChannel) are never filtered.
SERVICE_EVENTS: frozenset[str] = TRACKED_EVENTS | QUEUE_EVENTS | {"OriginateResponse"}
