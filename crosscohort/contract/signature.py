"""Ed25519 signatures of a bundle's manifest: the TRE signs, the central analyst checks.

The manifest lists every file of the bundle with its SHA-256, so a signature
over the manifest's exact bytes authenticates the whole bundle: anyone can
edit a table and re-hash the manifest, but only the holder of the TRE's
private key can sign the result.

- Keys: ``crosscohort keygen --key tre.key --public-key tre.pub`` writes an
  Ed25519 private key (PEM, PKCS#8, unencrypted, mode 0600; it never leaves
  the TRE) and its public key (PEM, SubjectPublicKeyInfo), which the TRE
  sends to the consortium. ``openssl genpkey -algorithm ed25519`` and
  ``openssl pkey -pubout`` make the same files; an OpenSSH ``ssh-ed25519``
  public key line is read too.
- Signing: ``crosscohort export --signing-key tre.key`` writes
  :data:`SIGNATURE` (``manifest.sig.json``) after ``manifest.json``: the
  algorithm, the SHA-256 of the raw 32-byte public key (its fingerprint) and
  the 64-byte signature, in hexadecimal (a single token, no ``+`` or ``/``
  that the identifier scan would split).
- Checking: ``crosscohort verify --public-key tre.pub`` refuses a bundle with
  no signature, a signature by another key, or one that does not match the
  manifest's bytes. The cohort sheet's ``public_key`` column names each
  cohort's key; without one the signature is not checked (and the
  verification record says so).
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from crosscohort.contract.errors import ConfigError, InputError

__all__ = [
    "ALGORITHM",
    "SIGNATURE",
    "SignatureCheck",
    "check_signature",
    "generate_keypair",
    "key_fingerprint",
    "load_private_key",
    "load_public_key",
    "sign_manifest",
]

#: The signature file beside ``manifest.json``.
SIGNATURE = "manifest.sig.json"
ALGORITHM = "Ed25519"
_SIGNED = "manifest.json"


def key_fingerprint(key: Ed25519PublicKey) -> str:
    """SHA-256 (hex) of the raw 32-byte public key: how a record and an error name a key."""
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()


def generate_keypair(key: str | Path, public_key: str | Path) -> str:
    """Write a new Ed25519 private key and its public key; return the key's fingerprint.

    Parameters
    ----------
    key
        Private key file to create (PEM, PKCS#8, unencrypted), mode 0600.
    public_key
        Public key file to create (PEM, SubjectPublicKeyInfo).

    Raises
    ------
    ConfigError
        Either file exists already (a key is never overwritten: losing one
        makes the TRE's earlier bundles unverifiable), or the two are one path.
    """
    key, public_key = Path(key), Path(public_key)
    if key.resolve() == public_key.resolve():
        raise ConfigError(f"{key}: the private and the public key need two different files")
    for p in (key, public_key):
        if p.exists() or p.is_symlink():
            raise ConfigError(f"{p}: exists already; keygen never overwrites a key file (choose a new name)")
    private = Ed25519PrivateKey.generate()
    pem = private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    pub = private.public_key()
    for p in (key, public_key):
        p.parent.mkdir(parents=True, exist_ok=True)
    # Created with mode 0600 from the start, never world-readable for a moment.
    fd = os.open(key, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(pem)
    try:
        fd = os.open(public_key, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    except FileExistsError:
        key.unlink()  # ours, written just above
        raise ConfigError(f"{public_key}: exists already; keygen never overwrites a key file") from None
    with os.fdopen(fd, "wb") as fh:
        fh.write(pub.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    return key_fingerprint(pub)


def _load_key(path: str | Path, *, what: str, parse, kind: type, expected: str):
    """The key of type ``kind`` that ``parse`` reads from the file at ``path``.

    Each failure is one :class:`ConfigError` naming the file: missing,
    unreadable as ``expected``, encrypted (``parse`` raises ``TypeError``), or
    not Ed25519.
    """
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: no such {what} file")
    try:
        key = parse(path.read_bytes())
    except TypeError as exc:
        raise ConfigError(f"{path}: the {what} is encrypted; give an unencrypted PEM key ({exc})") from None
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise ConfigError(f"{path}: not a {expected}: {str(exc).splitlines()[0]}") from None
    if not isinstance(key, kind):
        raise ConfigError(f"{path}: the {what} must be Ed25519; got {type(key).__name__}")
    return key


def load_private_key(path: str | Path) -> Ed25519PrivateKey:
    """The TRE's Ed25519 private key from a PEM file (as ``crosscohort keygen`` writes).

    Raises
    ------
    ConfigError
        Missing file, not a PEM private key, encrypted, or not Ed25519.
    """
    return _load_key(
        path, what="signing key", kind=Ed25519PrivateKey,
        parse=lambda data: serialization.load_pem_private_key(data, password=None),
        expected="PEM private key (expected -----BEGIN PRIVATE KEY-----, as 'crosscohort keygen' writes)",
    )


def _parse_public(data: bytes):
    if data.lstrip().startswith(b"ssh-"):
        return serialization.load_ssh_public_key(data.strip())
    return serialization.load_pem_public_key(data)


def load_public_key(path: str | Path) -> Ed25519PublicKey:
    """A cohort's Ed25519 public key: PEM (``-----BEGIN PUBLIC KEY-----``) or an OpenSSH line.

    Raises
    ------
    ConfigError
        Missing file, not a public key, or not Ed25519.
    """
    return _load_key(
        path, what="public key", kind=Ed25519PublicKey, parse=_parse_public,
        expected="public key (expected PEM -----BEGIN PUBLIC KEY----- or an ssh-ed25519 line)",
    )


def sign_manifest(directory: str | Path, key: Ed25519PrivateKey) -> Path:
    """Sign ``directory/manifest.json``'s bytes with ``key``; write and return :data:`SIGNATURE`."""
    directory = Path(directory)
    data = (directory / _SIGNED).read_bytes()
    record = {
        "algorithm": ALGORITHM,
        "signed_file": _SIGNED,
        "public_key_sha256": key_fingerprint(key.public_key()),
        "signature": key.sign(data).hex(),
    }
    out = directory / SIGNATURE
    out.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    return out


@dataclass(frozen=True)
class SignatureCheck:
    """The outcome of :func:`check_signature`, as the verification record states it."""

    status: str
    public_key_sha256: str | None

    def to_dict(self) -> dict[str, str | None]:
        return {"status": self.status, "algorithm": ALGORITHM, "public_key_sha256": self.public_key_sha256}


def check_signature(directory: str | Path, public_key: Ed25519PublicKey | None) -> SignatureCheck:
    """Check the bundle's manifest signature against the cohort's public key.

    Parameters
    ----------
    directory
        The bundle directory.
    public_key
        The cohort's key from the cohort sheet, or ``None`` when none is
        configured (the signature, if any, is then only reported).

    Returns
    -------
    SignatureCheck
        ``status`` ``"valid"``, or without a key ``"not checked (signed)"``
        or ``"not checked (unsigned)"``.

    Raises
    ------
    InputError
        With a key: no signature file, a malformed one, a signature by
        another key, or one that does not match the manifest's bytes.
    """
    directory = Path(directory)
    sig_path = directory / SIGNATURE
    if public_key is None:
        return SignatureCheck("not checked (signed)" if sig_path.is_file() else "not checked (unsigned)", None)
    expected = key_fingerprint(public_key)
    if not sig_path.is_file():
        raise InputError(
            f"{sig_path}: missing; the cohort sheet lists a public key (SHA-256 {expected[:16]}...) for this "
            "cohort, so its bundle must be signed (crosscohort export --signing-key)"
        )
    try:
        record = json.loads(sig_path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"{sig_path}: not valid JSON ({exc})") from None
    if not isinstance(record, dict) or not {"algorithm", "public_key_sha256", "signature"} <= set(record):
        raise InputError(f"{sig_path}: expected an object with algorithm, public_key_sha256 and signature")
    if record["algorithm"] != ALGORITHM:
        raise InputError(f"{sig_path}: algorithm {record['algorithm']!r}; only {ALGORITHM} is accepted")
    if record["public_key_sha256"] != expected:
        raise InputError(
            f"{sig_path}: signed by key {str(record['public_key_sha256'])[:16]}..., but the cohort sheet's "
            f"public key is {expected[:16]}...; the bundle is not from this cohort's TRE (or its key changed)"
        )
    try:
        signature = bytes.fromhex(str(record["signature"]))
        public_key.verify(signature, (directory / _SIGNED).read_bytes())
    except (ValueError, InvalidSignature):
        raise InputError(
            f"{sig_path}: the signature does not match {_SIGNED}; the manifest was changed after the TRE "
            "signed it"
        ) from None
    return SignatureCheck("valid", expected)
