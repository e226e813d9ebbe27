"""HTTPS for clients that refuse plain http: the throwaway CA and certificate, and
``mockkling serve --self-signed DIR`` / ``--ssl-certfile`` / ``--ssl-keyfile``."""

from __future__ import annotations

import ipaddress
import ssl
import stat
from pathlib import Path

import httpx
import pytest
from cryptography import x509

from mockkling import Backend, create_app
from mockkling.cli import main
from mockkling.server import LiveServer
from mockkling.tls import make_self_signed


def test_the_certificate_is_for_loopback_and_signed_by_a_ca(tmp_path: Path) -> None:
    files = make_self_signed(tmp_path, hosts=["mock.internal"])
    assert files.ca_file is not None
    ca = x509.load_pem_x509_certificate(files.ca_file.read_bytes())
    cert = x509.load_pem_x509_certificate(files.certfile.read_bytes())
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert not cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert cert.issuer == ca.subject
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert set(names.get_values_for_type(x509.DNSName)) == {"localhost", "mock.internal"}
    assert set(names.get_values_for_type(x509.IPAddress)) == {
        ipaddress.ip_address("127.0.0.1"),
        ipaddress.ip_address("::1"),
    }
    assert stat.S_IMODE(files.keyfile.stat().st_mode) == 0o600
    # Only the server's key is written: nothing else can ever be signed by this CA.
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ca.pem", "cert.pem", "key.pem"]
    assert b"PRIVATE KEY" not in files.ca_file.read_bytes() + files.certfile.read_bytes()


@pytest.mark.slow
def test_clients_verify_the_server_against_the_ca(tmp_path: Path) -> None:
    files = make_self_signed(tmp_path)
    context = ssl.create_default_context(cafile=str(files.ca_file))
    context.verify_flags |= ssl.VERIFY_X509_STRICT  # what Python 3.13 clients check by default
    options = {"ssl_certfile": str(files.certfile), "ssl_keyfile": str(files.keyfile)}
    with LiveServer(create_app(Backend()), **options) as live:
        for host in ("127.0.0.1", "localhost"):
            url = live.url.replace("127.0.0.1", host)
            answer = httpx.get(f"{url}/v1/videos/text2video", verify=context)
            assert answer.status_code == 401 and answer.json()["code"] == 1001
        with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
            httpx.get(f"{live.url}/v1/videos/text2video")  # not trusted without the CA
    assert files.trust_env() == {
        "SSL_CERT_FILE": str(files.ca_file),
        "REQUESTS_CA_BUNDLE": str(files.ca_file),
        "NODE_EXTRA_CA_CERTS": str(files.ca_file),
    }


@pytest.mark.parametrize(
    ("flags", "words"),
    [
        (["--ssl-certfile", "cert.pem"], "--ssl-certfile and --ssl-keyfile together"),
        (["--self-signed", "tls", "--ssl-keyfile", "key.pem"], "either --self-signed or"),
        (["--ssl-certfile", "missing.pem", "--ssl-keyfile", "missing.pem"], "cannot use missing.pem"),
    ],
)
def test_bad_tls_flags_exit_2_saying_why(
    flags: list[str],
    words: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["serve", *flags]) == 2
    assert words in capsys.readouterr().err


def test_a_key_that_does_not_match_the_certificate_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    one, two = make_self_signed(tmp_path / "one"), make_self_signed(tmp_path / "two")
    assert main(["serve", "--ssl-certfile", str(one.certfile), "--ssl-keyfile", str(two.keyfile)]) == 2
    assert "cannot use" in capsys.readouterr().err
