"""Publish/subscribe for dartle apps: one process (`memory://`) or many (`redis://`).

    from dartle.web.pubsub import Broadcast, Groups

    broadcast = Broadcast("redis://127.0.0.1:6379/0")
    groups = Groups(broadcast)

`Broadcast` publishes to channels and subscribes to them (`subscribe()` is an async
iterator of `Event`s); `Groups` joins WebSockets to named groups and sends to them.
The Redis backend reconnects with back-off and subscribes again by itself; publishing
while Redis is down raises `PublishError`. The guide: docs/scaling.md.
"""

from __future__ import annotations

from dartle.web.pubsub.broadcast import Broadcast, Event, Subscription
from dartle.web.pubsub.errors import (
    BroadcastError,
    BroadcastUnavailable,
    PublishError,
    SubscriberOverflow,
)
from dartle.web.pubsub.groups import GroupMember, Groups, TextSocket

__all__ = [
    "Broadcast",
    "BroadcastError",
    "BroadcastUnavailable",
    "Event",
    "GroupMember",
    "Groups",
    "PublishError",
    "SubscriberOverflow",
    "Subscription",
    "TextSocket",
]
