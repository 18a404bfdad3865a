"""Certificates for tests of TLS against real servers (mosquitto, Kafka), made by the openssl CLI:
a CA, certificates it signs, and a PKCS#12 keystore for a JVM server."""
import os
import subprocess


def openssl(*args):
    p = subprocess.run(["openssl", *args], capture_output=True, timeout=60)
    assert p.returncode == 0, f"openssl {' '.join(args)}: {p.stderr.decode(errors='replace')}"


def make_ca(d, name):
    """A self-signed CA: (crt, key) paths in directory d."""
    key, crt = os.path.join(d, f"{name}.key"), os.path.join(d, f"{name}.crt")
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", crt, "-days", "2",
            "-subj", f"/CN={name}")
    return crt, key


def make_cert(d, ca, name, san=None):
    """A certificate for `name` signed by `ca` (its crt, key); `san`: the subjectAltName."""
    key, csr, crt = (os.path.join(d, f"{name}.{ext}") for ext in ("key", "csr", "crt"))
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", csr, "-subj", f"/CN={name}")
    args = ["x509", "-req", "-in", csr, "-CA", ca[0], "-CAkey", ca[1], "-CAcreateserial", "-out", crt, "-days", "2"]
    if san:
        ext = os.path.join(d, f"{name}.ext")
        with open(ext, "w") as f:
            f.write(f"subjectAltName={san}\n")
        args += ["-extfile", ext]
    openssl(*args)
    return crt, key


def make_pkcs12(cert, password):
    """A PKCS#12 keystore of a certificate and its key (crt, key), beside them; its path."""
    path = os.path.splitext(cert[0])[0] + ".p12"
    openssl("pkcs12", "-export", "-in", cert[0], "-inkey", cert[1], "-name", "server", "-out", path,
            "-passout", f"pass:{password}")
    return path
