"""The AMI events the service listens to: one list for the link's filter and manager.conf."""

from ivr.ami.tracker import TRACKED_EVENTS

#: The call tracker's events, plus the answer to an asynchronous Originate (callbacks,
#: three-way calls). Listings that answer our own actions (CoreShowChannel) are never filtered.
SERVICE_EVENTS: frozenset[str] = TRACKED_EVENTS | {"OriginateResponse"}
