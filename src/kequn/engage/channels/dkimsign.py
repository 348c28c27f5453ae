"""DKIM signatures (RFC 6376: rsa-sha256, relaxed/relaxed) made with OpenSSL.

dkimpy signs with pure-Python RSA, several milliseconds a message, which would cap a
campaign at a few thousand emails a minute; here the key is loaded once and each
signature is one OpenSSL call. The tests check these signatures with dkimpy's verifier.
"""

from __future__ import annotations

import base64
import hashlib
import re
import time
from dataclasses import dataclass

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

_WSP = re.compile(rb"[ \t]+")
_TRAILING_WSP = re.compile(rb"[ \t]+\r\n")
_TRAILING_LINES = re.compile(rb"(\r\n)+$")


@dataclass(frozen=True)
class DKIMSigner:
    """A loaded RSA key with its selector and signing domain."""

    selector: str
    domain: str
    key: rsa.RSAPrivateKey

    @classmethod
    def from_pem(cls, pem: bytes, *, selector: str, domain: str) -> DKIMSigner:
        """Return a signer for a PEM RSA private key; ValueError if it is not one."""
        key = serialization.load_pem_private_key(pem, password=None)
        if not isinstance(key, rsa.RSAPrivateKey):
            raise ValueError("not an RSA private key")
        return cls(selector, domain, key)

    def sign(self, message: bytes, header_names: list[str]) -> bytes:
        """Return the DKIM-Signature header line (CRLF-terminated) for a CRLF message."""
        head, _sep, body = message.partition(b"\r\n\r\n")
        fields = _header_fields(head + b"\r\n")
        signed = [name for name in header_names if name.lower() in fields]
        body_hash = base64.b64encode(hashlib.sha256(canonicalize_body(body)).digest()).decode()
        unsigned = (
            f"DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed; d={self.domain};"
            f" s={self.selector};\r\n\tt={int(time.time())}; h={':'.join(signed)};\r\n"
            f"\tbh={body_hash};\r\n\tb="
        ).encode("ascii")
        data = b"".join(canonicalize_header(fields[name.lower()]) + b"\r\n" for name in signed)
        data += canonicalize_header(unsigned)
        signature = base64.b64encode(self.key.sign(data, padding.PKCS1v15(), hashes.SHA256()))
        folded = b"\r\n\t".join(signature[i : i + 72] for i in range(0, len(signature), 72))
        return unsigned + folded + b"\r\n"


def _header_fields(head: bytes) -> dict[str, bytes]:
    """Return the last occurrence of each header field (name lower-cased -> raw field)."""
    fields: dict[str, bytes] = {}
    current: list[bytes] = []
    for line in head.split(b"\r\n"):
        if line[:1] in (b" ", b"\t") and current:
            current.append(line)
            continue
        if current:
            raw = b"\r\n".join(current)
            fields[raw.split(b":", 1)[0].strip().lower().decode("ascii", "replace")] = raw
        current = [line] if line else []
    return fields


def canonicalize_header(raw: bytes) -> bytes:
    """Return a header field in relaxed form: name lower-case, unfolded, spaces squeezed."""
    name, _sep, value = raw.partition(b":")
    value = _WSP.sub(b" ", value.replace(b"\r\n", b"")).strip(b" ")
    return name.strip().lower() + b":" + value


def canonicalize_body(body: bytes) -> bytes:
    """Return a body in relaxed form: spaces squeezed, trailing spaces and empty lines removed."""
    if body and not body.endswith(b"\r\n"):
        body += b"\r\n"
    body = _WSP.sub(b" ", body)
    body = _TRAILING_WSP.sub(b"\r\n", body)
    body = _TRAILING_LINES.sub(b"", body)
    return body + b"\r\n" if body else b""
