"""A throwaway certificate authority for TLS tests, made with the openssl
command line: a CA, and server certificates it signs with subjectAltName
127.0.0.1 and localhost. Files are PEM; keys are unencrypted PKCS#8."""

from __future__ import annotations

import subprocess
from pathlib import Path


def _openssl(*args: str, cwd: Path) -> None:
    r = subprocess.run(
        ["openssl", *args], cwd=cwd, capture_output=True, text=True, stdin=subprocess.DEVNULL
    )
    if r.returncode != 0:
        raise RuntimeError(f"openssl {' '.join(args)} failed:\n{r.stderr}")


def make_ca(dir: Path, name: str = "ca") -> Path:
    """dir/<name>.pem and dir/<name>.key; returns the certificate's path."""
    dir.mkdir(parents=True, exist_ok=True)
    _openssl(
        "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
        "-subj", f"/CN=orders-cdc test {name}",
        "-keyout", f"{name}.key", "-out", f"{name}.pem",
        "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign",
        cwd=dir,
    )
    return dir / f"{name}.pem"


def make_server_cert(dir: Path, name: str = "server", ca: str = "ca") -> tuple[Path, Path]:
    """dir/<name>.pem (signed by dir/<ca>), dir/<name>.key, and
    dir/<name>-keystore.pem (key then certificate, for Kafka's PEM keystore).
    SAN: IP 127.0.0.1 and DNS localhost. Returns (certificate, key)."""
    ext = dir / f"{name}.ext"
    ext.write_text(
        "subjectAltName=IP:127.0.0.1,DNS:localhost\n"
        "basicConstraints=CA:FALSE\n"
        "keyUsage=digitalSignature,keyEncipherment\n"
        "extendedKeyUsage=serverAuth\n"
    )
    _openssl(
        "req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=localhost",
        "-keyout", f"{name}.key", "-out", f"{name}.csr",
        cwd=dir,
    )
    _openssl(
        "x509", "-req", "-in", f"{name}.csr", "-CA", f"{ca}.pem", "-CAkey", f"{ca}.key",
        "-CAcreateserial", "-days", "2", "-extfile", ext.name, "-out", f"{name}.pem",
        cwd=dir,
    )
    key = dir / f"{name}.key"
    cert = dir / f"{name}.pem"
    key.chmod(0o600)
    (dir / f"{name}-keystore.pem").write_text(key.read_text() + cert.read_text())
    return cert, key
