"""Throwaway TLS: a local CA (made by trustme) and server certificates signed by it, so a client
that refuses a plain-http base URL (many SDKs do) can talk to the mock over HTTPS and verify it.

The CA's private key never leaves memory: once the process ends, nothing else can be issued
under that CA, so trusting it for a test run trusts only this server.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import trustme

# Names the server certificate is valid for, besides any the caller adds.
LOOPBACK_NAMES: tuple[str, ...] = ("localhost", "127.0.0.1", "::1")
CA_FILE, CERT_FILE, KEY_FILE = "ca.pem", "cert.pem", "key.pem"


@dataclass(frozen=True, slots=True)
class TLSFiles:
    """Where a server's certificate and key are, and the CA file a client should trust."""

    certfile: Path
    keyfile: Path
    ca_file: Path | None = None

    def trust_env(self) -> dict[str, str]:
        return {} if self.ca_file is None else trust_env(self.ca_file)


def trust_env(ca_file: str | os.PathLike[str]) -> dict[str, str]:
    """Environment variables that make common clients trust ``ca_file``: Python's ssl and httpx
    (SSL_CERT_FILE), requests (REQUESTS_CA_BUNDLE) and Node.js (NODE_EXTRA_CA_CERTS)."""
    path = str(ca_file)
    return {"SSL_CERT_FILE": path, "REQUESTS_CA_BUNDLE": path, "NODE_EXTRA_CA_CERTS": path}


def write_private(path: Path, data: bytes) -> None:
    """Write a key file that is private to its owner from the moment it exists."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    os.chmod(path, 0o600)


def issue(ca: trustme.CA, directory: Path, hosts: Iterable[str]) -> TLSFiles:
    """A certificate for ``hosts`` signed by ``ca``, written as ``cert.pem`` and ``key.pem`` in
    ``directory``, with the CA as ``ca.pem``."""
    directory.mkdir(parents=True, exist_ok=True)
    leaf = ca.issue_cert(*dict.fromkeys(hosts), organization_name="mockkling")
    ca_file, certfile, keyfile = directory / CA_FILE, directory / CERT_FILE, directory / KEY_FILE
    ca.cert_pem.write_to_path(str(ca_file))
    certfile.write_bytes(b"".join(pem.bytes() for pem in leaf.cert_chain_pems))
    write_private(keyfile, leaf.private_key_pem.bytes())
    return TLSFiles(certfile=certfile, keyfile=keyfile, ca_file=ca_file)


def make_self_signed(directory: str | os.PathLike[str], hosts: Iterable[str] = ()) -> TLSFiles:
    """Write ``ca.pem``, ``cert.pem`` and ``key.pem`` into ``directory`` (created if needed): a
    new throwaway CA and a certificate for loopback plus ``hosts``."""
    ca = trustme.CA(organization_name="mockkling throwaway CA")
    return issue(ca, Path(directory), [*LOOPBACK_NAMES, *hosts])
