"""The ASGI specification side of dartle: types, validation and concurrency helpers."""
