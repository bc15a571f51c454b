"""What can go wrong with a broadcast, as exceptions the caller can catch by kind."""

from __future__ import annotations

__all__ = ["BroadcastError", "BroadcastUnavailable", "PublishError", "SubscriberOverflow"]


class BroadcastError(Exception):
    """Base class of the errors `dartle.web.pubsub` raises."""


class BroadcastUnavailable(BroadcastError):
    """The message bus cannot be reached (raised by `Broadcast.connect()`)."""


class PublishError(BroadcastError):
    """A message was not published: the bus is down or did not answer in time.

    The message is not queued for later: the caller decides whether to retry, tell
    the user, or give up. `channel` names the channel it was meant for.
    """

    def __init__(self, channel: str, detail: str) -> None:
        super().__init__(f"message to channel {channel!r} not published: {detail}")
        self.channel = channel


class SubscriberOverflow(BroadcastError):
    """A subscriber left more than `max_queue` messages unread and was dropped.

    Raised by the subscription's iteration instead of letting memory grow without
    bound (or silently skipping messages). The subscription receives nothing more.
    """
