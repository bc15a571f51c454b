"""The dartle server: network bytes <-> ASGI events."""
