"""Deterministic stand-ins for values a provider generates: passwords, keys, ids, words.

Each value has the shape the real provider returns (a password of the requested length and
character classes, a syntactically valid OpenSSH public key, PEM blocks), is derived from a seed
(the resource's URN), and is the same on every run. None of them is a usable secret.
"""

from __future__ import annotations

import base64
import hashlib
import struct
from collections.abc import Mapping
from typing import Any

# Character classes of the `random` provider (terraform-provider-random, internal/random/string.go).
LOWER = "abcdefghijklmnopqrstuvwxyz"
UPPER = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
NUMERIC = "0123456789"
SPECIAL = "!@#$%&*()-_=+[]{}<>:?"
# A few words for RandomPet; the provider draws from a longer list of the same kind.
ADJECTIVES = ("brave", "calm", "eager", "fond", "gentle", "keen", "lucky", "proud", "quiet")
ANIMALS = ("badger", "crane", "dingo", "egret", "ferret", "gecko", "heron", "ibis", "koala")


def stream(seed: str, length: int) -> bytes:
    """`length` bytes derived from `seed` (SHA-256 in counter mode)."""
    out = bytearray()
    counter = 0
    while len(out) < length:
        out += hashlib.sha256(f"{seed}:{counter}".encode()).digest()
        counter += 1
    return bytes(out[:length])


def secret_text(seed: str) -> str:
    """32 bytes as standard base64 with neither `+` nor `/`: valid base64 and URL-safe base64.

    Programs decode secrets as keys (Fernet, AES-256) or use them as passwords; this decodes to
    32 bytes either way and is printable.
    """
    attempt = 0
    while True:
        text = base64.b64encode(stream(f"{seed}:{attempt}", 32)).decode()
        if "+" not in text and "/" not in text:
            return text
        attempt += 1


def password(seed: str, inputs: Mapping[str, Any]) -> str:
    """A RandomPassword/RandomString result honouring length, classes and minimums."""
    length = int(inputs.get("length", 16))
    classes: list[tuple[str, int]] = []
    specials = str(inputs.get("overrideSpecial") or SPECIAL)
    for flag, chars, minimum in (
        ("upper", UPPER, "minUpper"),
        ("lower", LOWER, "minLower"),
        ("numeric", NUMERIC, "minNumeric"),
        ("special", specials, "minSpecial"),
    ):
        if inputs.get(flag, True) is not False and chars:
            classes.append((chars, int(inputs.get(minimum, 0) or 0)))
    if not classes:
        classes = [(LOWER, 0)]
    alphabet = "".join(chars for chars, _ in classes)
    data = iter(stream(seed, length + sum(count for _, count in classes)))
    # The minimums first, then the rest from every class; a fixed interleaving keeps it stable.
    picked = [chars[next(data) % len(chars)] for chars, count in classes for _ in range(count)]
    while len(picked) < length:
        picked.append(alphabet[next(data) % len(alphabet)])
    return "".join(picked[:length])


def bcrypt_shape(seed: str) -> str:
    """A string shaped like a bcrypt hash (`$2a$10$` + 53 characters); not a real hash."""
    alphabet = "./ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
    return "$2a$10$" + "".join(alphabet[b % 64] for b in stream(seed, 53))


def pet_name(seed: str, inputs: Mapping[str, Any]) -> str:
    """A RandomPet id: `length` words joined by `separator`, after an optional prefix."""
    length = int(inputs.get("length", 2))
    separator = str(inputs.get("separator", "-"))
    data = stream(seed, length)
    words = [ANIMALS[data[-1] % len(ANIMALS)]]
    words[:0] = [ADJECTIVES[b % len(ADJECTIVES)] for b in data[:-1]]
    prefix = inputs.get("prefix")
    return separator.join(([str(prefix)] if prefix else []) + words)


def random_id(seed: str, inputs: Mapping[str, Any]) -> dict[str, Any]:
    """RandomId's encodings of `byteLength` bytes."""
    raw = stream(seed, int(inputs.get("byteLength", 8)))
    url = base64.urlsafe_b64encode(raw).decode().rstrip("=")
    prefix = str(inputs.get("prefix") or "")
    return {
        "id": url,
        "b64Url": prefix + url,
        "b64Std": prefix + base64.b64encode(raw).decode(),
        "hex": prefix + raw.hex(),
        "dec": prefix + str(int.from_bytes(raw, "big")),
    }


def random_integer(seed: str, inputs: Mapping[str, Any]) -> int:
    """A RandomInteger result within [min, max]."""
    low, high = int(inputs.get("min", 0)), int(inputs.get("max", 0))
    span = max(high - low + 1, 1)
    return low + int.from_bytes(stream(seed, 8), "big") % span


def uuid_text(seed: str) -> str:
    """A version-4 UUID string derived from `seed`."""
    raw = bytearray(stream(seed, 16))
    raw[6] = (raw[6] & 0x0F) | 0x40
    raw[8] = (raw[8] & 0x3F) | 0x80
    h = raw.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def pem(label: str, seed: str, size: int = 96) -> str:
    """A PEM block with the given label; its body is not a parseable key."""
    body = base64.b64encode(stream(seed, size)).decode()
    lines = [body[i : i + 64] for i in range(0, len(body), 64)]
    return "\n".join([f"-----BEGIN {label}-----", *lines, f"-----END {label}-----", ""])


def _ssh_string(data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + data


def _mpint(value: bytes) -> bytes:
    return _ssh_string(b"\x00" + value if value[0] & 0x80 else value)


def ssh_public_key_blob(seed: str, algorithm: str, rsa_bits: int = 2048) -> tuple[str, bytes]:
    """(OpenSSH key type, wire blob) for a syntactically valid public key (RFC 4253 6.6)."""
    algorithm = algorithm.upper()
    if algorithm == "ED25519":
        return "ssh-ed25519", _ssh_string(b"ssh-ed25519") + _ssh_string(stream(seed, 32))
    if algorithm == "ECDSA":
        point = b"\x04" + stream(seed, 64)
        return "ecdsa-sha2-nistp256", (
            _ssh_string(b"ecdsa-sha2-nistp256") + _ssh_string(b"nistp256") + _ssh_string(point)
        )
    modulus = bytearray(stream(seed, max(rsa_bits // 8, 128)))
    modulus[0] |= 0x80
    modulus[-1] |= 0x01
    blob = _ssh_string(b"ssh-rsa") + _mpint((65537).to_bytes(3, "big")) + _mpint(bytes(modulus))
    return "ssh-rsa", blob


def tls_private_key(seed: str, inputs: Mapping[str, Any]) -> dict[str, Any]:
    """The outputs of tls.PrivateKey, shaped as the tls provider returns them."""
    algorithm = str(inputs.get("algorithm", "RSA")).upper()
    rsa_bits = int(inputs.get("rsaBits", 2048))
    key_type, blob = ssh_public_key_blob(seed, algorithm, rsa_bits)
    md5 = hashlib.md5(blob, usedforsecurity=False).hexdigest()
    sha = base64.b64encode(hashlib.sha256(blob).digest()).decode().rstrip("=")
    pem_label = {"RSA": "RSA PRIVATE KEY", "ECDSA": "EC PRIVATE KEY"}.get(algorithm, "PRIVATE KEY")
    return {
        "algorithm": algorithm,
        "rsaBits": rsa_bits,
        "ecdsaCurve": inputs.get("ecdsaCurve", "P224"),
        "privateKeyPem": pem(pem_label, f"{seed}:private"),
        "privateKeyPemPkcs8": pem("PRIVATE KEY", f"{seed}:pkcs8"),
        "privateKeyOpenssh": pem("OPENSSH PRIVATE KEY", f"{seed}:openssh"),
        "publicKeyPem": pem("PUBLIC KEY", f"{seed}:public"),
        "publicKeyOpenssh": f"{key_type} {base64.b64encode(blob).decode()}\n",
        "publicKeyFingerprintMd5": ":".join(md5[i : i + 2] for i in range(0, 32, 2)),
        "publicKeyFingerprintSha256": f"SHA256:{sha}",
    }
