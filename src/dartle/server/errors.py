"""Exceptions the server raises into applications."""


class ClientDisconnected(OSError):
    """The client went away; raised by send() after that (ASGI HTTP spec 2.4).

    The server catches it when it propagates out of the app and does not log it as an error.
    """

    def __init__(self, message: str = "client disconnected") -> None:
        super().__init__(message)
