"""HTTPS for the REST server, from Orthanc's `Ssl*` options."""

from __future__ import annotations

import ssl

from ..config import Configuration
from ..errors import ErrorCode, OrthancError

# Orthanc's SslMinimumProtocolVersion: 0 SSL2+, 1 SSL3+, 2 TLS 1.0+, 3 TLS 1.1+, 4 TLS 1.2+, 5 TLS 1.3.
# Python's ssl module cannot go below TLS 1.0, and modern OpenSSL refuses less than 1.2 anyway.
_MINIMUM = {0: ssl.TLSVersion.MINIMUM_SUPPORTED, 1: ssl.TLSVersion.MINIMUM_SUPPORTED, 2: ssl.TLSVersion.TLSv1,
            3: ssl.TLSVersion.TLSv1_1, 4: ssl.TLSVersion.TLSv1_2, 5: ssl.TLSVersion.TLSv1_3}


def server_context(config: Configuration) -> ssl.SSLContext | None:
    """None when `SslEnabled` is false; a clear start-up error when the certificate cannot be used."""
    if not config["SslEnabled"]:
        return None
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = _MINIMUM[int(config["SslMinimumProtocolVersion"])]
    certificate = config.path("SslCertificate")
    try:
        ctx.load_cert_chain(certificate)
        ciphers = config["SslCiphersAccepted"]
        if ciphers:
            ctx.set_ciphers(":".join(ciphers))
        if config["SslVerifyPeers"]:
            ctx.verify_mode = ssl.CERT_REQUIRED
            ctx.load_verify_locations(config.path("SslTrustedClientCertificates"))
    except (OSError, ssl.SSLError) as e:
        raise OrthancError(ErrorCode.SSL_INITIALIZATION,
                           f"Cannot set up HTTPS with the certificate {certificate}: {e}") from None
    return ctx
