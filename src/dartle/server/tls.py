"""TLS: the server's SSL context from the --ssl-* options, and the ASGI `tls` extension.

The context is built once per process; every mistake in the files (missing, unreadable,
not PEM, key not matching the certificate, wrong password) fails here, at startup, with
the file named. TLS 1.2 is the minimum; ALPN offers http/1.1 (and h2 once it is served,
unless --no-http2).

The `tls` scope extension (asgiref tls.rst 0.2) is computed once per connection: the
handshake fixes everything it reports.
"""

from __future__ import annotations

import os
import ssl
from typing import Any

from dartle.config import Config

TLS_VERSIONS = {"TLSv1.2": 0x0303, "TLSv1.3": 0x0304}
# RFC 4514 short names for the attribute types Python's getpeercert() spells out.
_SHORT_NAMES = {
    "commonName": "CN",
    "countryName": "C",
    "domainComponent": "DC",
    "localityName": "L",
    "organizationName": "O",
    "organizationalUnitName": "OU",
    "stateOrProvinceName": "ST",
    "streetAddress": "STREET",
    "userId": "UID",
}


class TLSSettings:
    """A built server context plus what every connection's `tls` extension repeats."""

    __slots__ = ("context", "server_cert", "suite_ids")

    def __init__(self, context: ssl.SSLContext, server_cert: str | None) -> None:
        self.context = context
        self.server_cert = server_cert
        # OpenSSL cipher names -> IANA 16-bit ids: the low half of OpenSSL's cipher id.
        self.suite_ids = {c["name"]: c["id"] & 0xFFFF for c in context.get_ciphers()}

    def extension(self, ssl_object: Any) -> dict[str, Any]:
        """The scope's `extensions["tls"]` for one established connection."""
        chain: list[str] = []
        name: str | None = None
        if self.context.verify_mode != ssl.CERT_NONE:
            der = ssl_object.getpeercert(binary_form=True)
            if der:
                # Python < 3.13 exposes only the peer's leaf certificate, not its chain.
                chain.append(ssl.DER_cert_to_PEM_cert(der))
                name = rfc4514_name(ssl_object.getpeercert().get("subject", ()))
        cipher = ssl_object.cipher()
        return {
            "server_cert": self.server_cert,
            "client_cert_chain": chain,
            "client_cert_name": name,
            # a handshake that failed verification never reaches the app
            "client_cert_error": None,
            "tls_version": TLS_VERSIONS.get(ssl_object.version()),
            "cipher_suite": self.suite_ids.get(cipher[0]) if cipher else None,
        }


def build_tls(config: Config) -> TLSSettings | None:
    """The server's TLS settings, or None when no certificate is configured.

    Raises ValueError naming the option and file at fault.
    """
    if not config.ssl_certfile:
        return None
    certfile = config.ssl_certfile
    keyfile = config.ssl_keyfile
    for option, path in (("--ssl-certfile", certfile), ("--ssl-keyfile", keyfile),
                         ("--ssl-ca-certs", config.ssl_ca_certs)):
        if path is not None and not os.path.isfile(path):
            raise ValueError(f"{option} {path!r}: no such file")
    key_text = _check_pem_files(certfile, keyfile, config.ssl_keyfile_password)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    # Without this, OpenSSL would retry TLS 1.2 renegotiation on our behalf mid-stream.
    context.options |= ssl.OP_NO_RENEGOTIATION
    key = keyfile or certfile
    try:
        # A callable, never None: with None OpenSSL would prompt on the terminal.
        context.load_cert_chain(certfile, keyfile, lambda: config.ssl_keyfile_password or "")
    except ssl.SSLError as exc:
        reason = (exc.reason or str(exc)).lower()
        if _encrypted(key_text) and "mismatch" not in reason:
            raise ValueError(f"--ssl-keyfile {key!r}: wrong --ssl-keyfile-password") from None
        if "mismatch" in reason:
            raise ValueError(
                f"--ssl-keyfile {key!r} is not the key of the certificate in {certfile!r}"
            ) from None
        raise ValueError(f"cannot load the certificate {certfile!r} with the key {key!r}: "
                         f"{exc.reason or exc}") from None
    context.verify_mode = ssl.VerifyMode(config.ssl_cert_reqs)
    if config.ssl_ca_certs:
        try:
            context.load_verify_locations(cafile=config.ssl_ca_certs)
        except (ssl.SSLError, OSError) as exc:
            raise ValueError(
                f"--ssl-ca-certs {config.ssl_ca_certs!r}: not readable PEM certificates ({exc})"
            ) from None
    elif config.ssl_cert_reqs != ssl.CERT_NONE:
        context.load_default_certs(ssl.Purpose.CLIENT_AUTH)
    if config.ssl_ciphers:
        try:
            context.set_ciphers(config.ssl_ciphers)
        except ssl.SSLError:
            raise ValueError(
                f"--ssl-ciphers {config.ssl_ciphers!r}: OpenSSL knows no cipher in this list"
            ) from None
    # HTTP/2 over TLS: a connection whose handshake selects "h2" is served by
    # server/http2.py (the switch is in http1.H1Connection.connection_made).
    context.set_alpn_protocols(["h2", "http/1.1"] if config.http2 else ["http/1.1"])
    return TLSSettings(context, _leaf_pem(certfile))


def _check_pem_files(certfile: str, keyfile: str | None, password: str | None) -> str:
    """Say in words what is wrong with the files OpenSSL would only call a "PEM lib" error.

    Returns the key's file content.
    """
    texts: dict[str, str] = {}
    for option, path in (("--ssl-certfile", certfile), ("--ssl-keyfile", keyfile)):
        if path is None:
            continue
        try:
            with open(path, encoding="ascii", errors="replace") as handle:
                texts[option] = handle.read()
        except OSError as exc:
            raise ValueError(f"{option} {path!r}: {exc.strerror or exc}") from None
    if "-----BEGIN CERTIFICATE-----" not in texts["--ssl-certfile"]:
        raise ValueError(f"--ssl-certfile {certfile!r} holds no PEM certificate")
    key_text = texts.get("--ssl-keyfile", texts["--ssl-certfile"])
    if "PRIVATE KEY-----" not in key_text:
        if keyfile is None:
            raise ValueError(f"--ssl-certfile {certfile!r} holds no private key: give it in "
                             "the same file or with --ssl-keyfile")
        raise ValueError(f"--ssl-keyfile {keyfile!r} holds no PEM private key")
    if _encrypted(key_text) and not password:
        raise ValueError(f"--ssl-keyfile {keyfile or certfile!r}: the private key is encrypted; "
                         "give --ssl-keyfile-password")
    return key_text


def _encrypted(key_text: str) -> bool:
    return "ENCRYPTED PRIVATE KEY-----" in key_text or "Proc-Type: 4,ENCRYPTED" in key_text


def _leaf_pem(certfile: str) -> str | None:
    """The first certificate of the chain file, as PEM: the one every handshake sends."""
    with open(certfile, encoding="ascii", errors="replace") as handle:
        text = handle.read()
    begin, end = "-----BEGIN CERTIFICATE-----", "-----END CERTIFICATE-----"
    start = text.find(begin)
    stop = text.find(end, start)
    if start < 0 or stop < 0:
        return None
    # The round trip through DER normalises line lengths and line endings.
    return ssl.DER_cert_to_PEM_cert(ssl.PEM_cert_to_DER_cert(text[start:stop + len(end)]))


def rfc4514_name(subject: Any) -> str | None:
    """getpeercert()'s subject tuples as an RFC 4514 string (most specific RDN first)."""
    rdns = []
    for rdn in reversed(subject):
        parts = [f"{_SHORT_NAMES.get(attr, attr)}={_escape(value)}" for attr, value in rdn]
        rdns.append("+".join(parts))
    return ",".join(rdns) or None


def _escape(value: str) -> str:
    out = []
    for i, char in enumerate(value):
        if char in ',+"\\<>;' or (i == 0 and char in "# ") or (i == len(value) - 1 and char == " "):
            out.append("\\" + char)
        elif char == "\0":
            out.append("\\00")
        else:
            out.append(char)
    return "".join(out)
