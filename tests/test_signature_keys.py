"""Key files for manifest signatures: each way a key file can be wrong is one line naming the file."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed448 import Ed448PrivateKey
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from crosscohort.contract.errors import ConfigError
from crosscohort.contract.signature import generate_keypair, load_private_key, load_public_key


def _pem(key, *, password: bytes | None = None) -> bytes:
    enc = (serialization.BestAvailableEncryption(password) if password
           else serialization.NoEncryption())
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, enc)


def test_keys__keygen_pair_loads(tmp_path):
    generate_keypair(tmp_path / "k.pem", tmp_path / "k.pub")
    assert isinstance(load_private_key(tmp_path / "k.pem"), Ed25519PrivateKey)
    load_public_key(tmp_path / "k.pub")


@pytest.mark.parametrize(("content", "rule"), [
    (None, "no such signing key file"),
    (b"not a key\n", "not a PEM private key (expected -----BEGIN PRIVATE KEY-----"),
    ("encrypted", "the signing key is encrypted; give an unencrypted PEM key"),
    ("ed448", "the signing key must be Ed25519; got"),
])
def test_private_key__each_fault_is_one_line_naming_the_file(tmp_path, content, rule):
    path = tmp_path / "key.pem"
    if content == "encrypted":
        path.write_bytes(_pem(Ed25519PrivateKey.generate(), password=b"secret"))
    elif content == "ed448":
        path.write_bytes(_pem(Ed448PrivateKey.generate()))
    elif content is not None:
        path.write_bytes(content)
    with pytest.raises(ConfigError) as exc:
        load_private_key(path)
    assert str(exc.value).startswith(f"{path}: ") and rule in str(exc.value)


@pytest.mark.parametrize(("content", "rule"), [
    (None, "no such public key file"),
    (b"ssh-rsa AAAA\n", "not a public key (expected PEM -----BEGIN PUBLIC KEY----- or an ssh-ed25519 line)"),
    ("ed448", "the public key must be Ed25519; got"),
])
def test_public_key__each_fault_is_one_line_naming_the_file(tmp_path, content, rule):
    path = tmp_path / "key.pub"
    if content == "ed448":
        path.write_bytes(Ed448PrivateKey.generate().public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    elif content is not None:
        path.write_bytes(content)
    with pytest.raises(ConfigError) as exc:
        load_public_key(path)
    assert str(exc.value).startswith(f"{path}: ") and rule in str(exc.value)
