"""Names of the channel variables shared between the service and the Asterisk dialplan.

One place, so the generated ``extensions.conf`` and the service can never disagree.
"""

HOTLINE_DIALED = "HOTLINE_DIALED"  # set by the dialplan to ${EXTEN} before any Goto
HOTLINE_ROUTE = "HOTLINE_ROUTE"  # queue | department | emergency | hangup | message
HOTLINE_TARGET = "HOTLINE_TARGET"  # Asterisk queue name, dial string or mailbox
HOTLINE_TICKET = "HOTLINE_TICKET"  # the ticket id of the call
HOTLINE_CALLBACK_REASON = "HOTLINE_CALLBACK_REASON"  # why a callback was placed (abandoned ...)
HOTLINE_KEY = "HOTLINE_KEY"  # the key read by the native fallback when the service is down
DIALSTATUS = "DIALSTATUS"
HANGUPCAUSE = "HANGUPCAUSE"

# HOTLINE_ROUTE values the dialplan's [hotline-route] context has an extension for.
ROUTE_QUEUE = "queue"
ROUTE_DEPARTMENT = "department"
ROUTE_EMERGENCY = "emergency"
ROUTE_HANGUP = "hangup"
ROUTE_MESSAGE = "message"
