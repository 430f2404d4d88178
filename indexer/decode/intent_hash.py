"""The intent hash: how the NEAR Intents Verifier names a signed payload.

Wallets, solvers and the 1Click API know an intent by the base58 ``intent_hash`` the Verifier
logs in its dip4 events. The Verifier computes it from the signed payload (a ``MultiPayload``,
tagged by ``standard``) as the digest its signature covers, so it can be computed from the
receipt's arguments alone, for failed receipts too (their logs carry no hash). Signatures are
not checked: a payload with a bad signature still has the hash its signer meant.

Per standard (the layout of each is in the function that hashes it):

* ``nep413``: SHA-256 of the NEP-461 tag ``2**31 + 413`` and the borsh-encoded payload.
* ``erc191`` / ``tip191``: Keccak-256 of the Ethereum / TRON signed-message prefix, the decimal
  UTF-8 byte length and the payload.
* ``raw_ed25519`` / ``webauthn``: SHA-256 of the payload text (webauthn's ``challenge`` is its
  base64url).
* ``ton_connect``: SHA-256 of TON Connect's ``signData`` layout (text and binary payloads).
* ``sep53``: SHA-256 of ``"Stellar Signed Message:\\n"`` and the payload.

``bip322`` payloads decode (signer, intents) but the Verifier does not accept the standard, so
they have no hash; neither have unknown standards nor malformed payloads: each raises
``IntentHashError`` saying why.
"""

from __future__ import annotations

import base64
import binascii
import calendar
import hashlib
import re
from typing import Any, Callable

import base58
from Crypto.Hash import keccak

__all__ = ["IntentHashError", "STANDARDS", "intent_hash", "intent_hash_bytes", "preimage"]

NEP413_TAG = (2**31 + 413).to_bytes(4, "little")  # NEP-461 prefix of off-chain messages: 9d 01 00 80
ERC191_PREFIX = b"\x19Ethereum Signed Message:\n"
TIP191_PREFIX = b"\x19TRON Signed Message:\n"
SEP53_PREFIX = b"Stellar Signed Message:\n"
TON_CONNECT_PREFIX = b"\xff\xffton-connect/sign-data/"
NOT_DEPLOYED = frozenset({"bip322"})  # decodable, but the Verifier takes no payload of this standard

_U32 = 2**32
_I64 = 2**63


class IntentHashError(ValueError):
    """The payload has no intent hash: unknown or undeployed standard, or a malformed field."""


# --- field readers: the types the Verifier's JSON decoding insists on -------------------------

def _field(obj: dict[str, Any], key: str, standard: str) -> Any:
    if key not in obj:
        raise IntentHashError(f"{standard} payload has no '{key}'")
    return obj[key]


def _text(obj: dict[str, Any], key: str, standard: str) -> bytes:
    value = _field(obj, key, standard)
    if not isinstance(value, str):
        raise IntentHashError(f"{standard} '{key}' is not a string")
    return _utf8(value, f"{standard} '{key}'")


def _utf8(value: str, what: str) -> bytes:
    try:
        return value.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate from a \ud800 escape: not a Rust String
        raise IntentHashError(f"{what} is not valid UTF-8") from None


def _len_u32(data: bytes, order: str, what: str) -> bytes:
    if len(data) >= _U32:
        raise IntentHashError(f"{what} is longer than a u32 length allows")
    return len(data).to_bytes(4, order)


def _base64_std(value: Any, what: str) -> bytes:
    """Standard-alphabet, padded base64, as serde_with's ``Base64`` reads it."""
    if not isinstance(value, str):
        raise IntentHashError(f"{what} is not a base64 string")
    try:
        return base64.b64decode(value, validate=True)
    except binascii.Error as exc:
        raise IntentHashError(f"{what} is not base64: {exc}") from None


# --- standards: each gives the bytes its digest covers ---------------------------------------

def _nep413(signed: dict[str, Any]) -> bytes:
    """borsh of (u32 tag, {message: String, nonce: [u8; 32], recipient: String, callbackUrl: Option<String>})."""
    payload = _field(signed, "payload", "nep413")
    if not isinstance(payload, dict):
        raise IntentHashError("nep413 'payload' is not an object")
    message = _text(payload, "message", "nep413")
    nonce = _base64_std(_field(payload, "nonce", "nep413"), "nep413 'nonce'")
    if len(nonce) != 32:
        raise IntentHashError(f"nep413 'nonce' is {len(nonce)} bytes, not 32")
    recipient = _text(payload, "recipient", "nep413")
    callback = payload.get("callbackUrl")
    if callback is None:
        option = b"\x00"
    elif isinstance(callback, str):
        url = _utf8(callback, "nep413 'callbackUrl'")
        option = b"\x01" + _len_u32(url, "little", "nep413 'callbackUrl'") + url
    else:
        raise IntentHashError("nep413 'callbackUrl' is not a string")
    return b"".join((NEP413_TAG, _len_u32(message, "little", "nep413 'message'"), message, nonce,
                     _len_u32(recipient, "little", "nep413 'recipient'"), recipient, option))


def _signed_message(prefix: bytes, standard: str) -> Callable[[dict[str, Any]], bytes]:
    """EIP-191 ``personal_sign`` and its TRON twin: the length is the decimal count of UTF-8 bytes."""
    def preimage(signed: dict[str, Any]) -> bytes:
        payload = _text(signed, "payload", standard)
        return prefix + str(len(payload)).encode() + payload
    return preimage


def _prefixed_payload(standard: str, prefix: bytes = b"") -> Callable[[dict[str, Any]], bytes]:
    def preimage(signed: dict[str, Any]) -> bytes:
        return prefix + _text(signed, "payload", standard)
    return preimage


def _ton_connect(signed: dict[str, Any]) -> bytes:
    """0xffff "ton-connect/sign-data/" i32 workchain, address[32], u32 domain length, domain,
    u64 timestamp, "txt" | "bin", u32 payload length, payload; big-endian numbers."""
    workchain, address = ton_address(_field(signed, "address", "ton_connect"))
    domain = _text(signed, "domain", "ton_connect")
    timestamp = ton_timestamp(_field(signed, "timestamp", "ton_connect"))
    body = _field(signed, "payload", "ton_connect")
    if not isinstance(body, dict):
        raise IntentHashError("ton_connect 'payload' is not an object")
    kind = body.get("type")
    if kind == "text":
        tag, data = b"txt", _text(body, "text", "ton_connect")
    elif kind == "binary":
        tag, data = b"bin", _base64_std(_field(body, "bytes", "ton_connect"), "ton_connect 'bytes'")
    else:  # "cell" payloads are not enabled in the Verifier
        raise IntentHashError(f"ton_connect payload type {kind!r} has no intent hash (text and binary do)")
    return b"".join((TON_CONNECT_PREFIX, workchain.to_bytes(4, "big", signed=True), address,
                     _len_u32(domain, "big", "ton_connect 'domain'"), domain, timestamp.to_bytes(8, "big"),
                     tag, _len_u32(data, "big", "ton_connect payload"), data))


def _sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def _keccak256(data: bytes) -> bytes:
    return keccak.new(data=data, digest_bits=256).digest()


# standard -> (what is hashed, the digest)
_STANDARDS: dict[str, tuple[Callable[[dict[str, Any]], bytes], Callable[[bytes], bytes]]] = {
    "nep413": (_nep413, _sha256),
    "erc191": (_signed_message(ERC191_PREFIX, "erc191"), _keccak256),
    "tip191": (_signed_message(TIP191_PREFIX, "tip191"), _keccak256),
    "raw_ed25519": (_prefixed_payload("raw_ed25519"), _sha256),
    "webauthn": (_prefixed_payload("webauthn"), _sha256),
    "ton_connect": (_ton_connect, _sha256),
    "sep53": (_prefixed_payload("sep53", SEP53_PREFIX), _sha256),
}
STANDARDS = frozenset(_STANDARDS)


def _standard(signed: Any) -> tuple[Callable[[dict[str, Any]], bytes], Callable[[bytes], bytes]]:
    if not isinstance(signed, dict):
        raise IntentHashError("signed payload is not an object")
    standard = signed.get("standard")
    if not isinstance(standard, str):
        raise IntentHashError(f"signed payload has no 'standard' name: {standard!r}")
    entry = _STANDARDS.get(standard)
    if entry is None:
        if standard in NOT_DEPLOYED:
            raise IntentHashError(f"{standard} payloads have no intent hash: the Verifier does not accept "
                                  f"the {standard} standard")
        raise IntentHashError(f"unknown signing standard {standard!r}")
    return entry


def preimage(signed: Any) -> bytes:
    """The bytes whose digest is the intent hash (what the signer's wallet signs or hashes)."""
    layout, _ = _standard(signed)
    return layout(signed)


def intent_hash_bytes(signed: Any) -> bytes:
    """The 32-byte digest the Verifier computes for one signed payload; raises IntentHashError."""
    layout, digest = _standard(signed)
    return digest(layout(signed))


def intent_hash(signed: Any) -> str:
    """The base58 intent hash of one signed payload, as dip4 events carry it; raises IntentHashError."""
    return base58.b58encode(intent_hash_bytes(signed)).decode()


# --- TON Connect fields -------------------------------------------------------------------------

_B64_STD = re.compile(r"[A-Za-z0-9+/]{48}")
_B64_URL = re.compile(r"[A-Za-z0-9_-]{48}")
_USER_FRIENDLY_TAGS = frozenset({0x11, 0x51, 0x91, 0xD1})  # (non-)bounceable x (non-)production
_HEX64 = re.compile(r"[0-9a-fA-F]{64}")
_INT = re.compile(r"[+-]?[0-9]+")
_RFC3339 = re.compile(r"(\d{4})-(\d\d)-(\d\d)[Tt](\d\d):(\d\d):(\d\d)(\.\d+)?(?:[Zz]|([+-])(\d\d):(\d\d))", re.ASCII)


def ton_address(value: Any) -> tuple[int, bytes]:
    """(workchain, 32-byte account id) of a raw ``wc:hex`` or a 48-character user-friendly address."""
    if not isinstance(value, str):
        raise IntentHashError("ton_connect 'address' is not a string")
    if len(value) == 48:
        url_safe = "-" in value or "_" in value
        if not (_B64_URL if url_safe else _B64_STD).fullmatch(value):
            raise IntentHashError(f"ton_connect address {value!r} is not base64")
        raw = base64.b64decode(value.replace("-", "+").replace("_", "/"))
        if raw[0] not in _USER_FRIENDLY_TAGS:
            raise IntentHashError(f"ton_connect address {value!r} has unsupported flags {raw[0]:#x}")
        if int.from_bytes(raw[34:36], "big") != binascii.crc_hqx(raw[:34], 0):
            raise IntentHashError(f"ton_connect address {value!r} fails its CRC check")
        return int.from_bytes(raw[1:2], "big", signed=True), raw[2:34]
    workchain, sep, account = value.partition(":")
    if not sep or not _INT.fullmatch(workchain) or not -(2**31) <= int(workchain) < 2**31:
        raise IntentHashError(f"ton_connect address {value!r} is neither 'workchain:hex' nor user-friendly")
    if not _HEX64.fullmatch(account):
        raise IntentHashError(f"ton_connect address {value!r} does not end in 64 hex digits")
    return int(workchain), bytes.fromhex(account)


def ton_timestamp(value: Any) -> int:
    """Unix seconds of an RFC 3339 string, a decimal string or an integer (the first that fits)."""
    seconds: int | None = None
    if isinstance(value, str):
        m = _RFC3339.fullmatch(value)
        if m is not None:
            seconds = _rfc3339_seconds(m)
        elif _INT.fullmatch(value):
            seconds = int(value)
    elif isinstance(value, int) and not isinstance(value, bool):
        seconds = value
    if seconds is None:
        raise IntentHashError(f"ton_connect timestamp {value!r} is neither RFC 3339 nor unix seconds")
    if not 0 <= seconds < _I64:  # seconds are read as i64, then written as u64
        raise IntentHashError(f"ton_connect timestamp {value!r} is before 1970 or out of range")
    return seconds


def _rfc3339_seconds(m: re.Match[str]) -> int:
    year, month, day, hour, minute, second = (int(g) for g in m.groups()[:6])
    sign, off_h, off_m = m.group(8), int(m.group(9) or 0), int(m.group(10) or 0)
    if not (year >= 1 and 1 <= month <= 12 and 1 <= day <= calendar.monthrange(year, month)[1] and hour < 24
            and minute < 60 and second < 60 and off_h < 24 and off_m < 60):
        raise IntentHashError(f"ton_connect timestamp {m.group(0)!r} is not a valid date and time")
    # Fractions are dropped (the layout holds whole seconds); an offset east of UTC is subtracted.
    offset = (off_h * 3600 + off_m * 60) * (1 if sign == "+" else -1)
    return calendar.timegm((year, month, day, hour, minute, second)) - offset
