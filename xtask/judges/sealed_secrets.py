"""An independent Sealed Secrets implementation (Python `cryptography`), to cross-check
enclave's sealing against the controller's format: each value is
`u16 BE len(rsa) || RSA-OAEP(SHA-256, MGF1-SHA-256, label)(session key) || AES-256-GCM(value)`
with a 12-byte zero nonce and no associated data, base64; the label is "<ns>/<name>" (strict),
"<ns>" (namespace-wide) or "" (cluster-wide), read from the SealedSecret's own metadata.

usage:
  sealed_secrets.py keys DIR                      write DIR/key.pem (PKCS#1 RSA 4096), DIR/cert.pem,
                                                  DIR/ec-key.pem and DIR/ec-cert.pem (not RSA)
  sealed_secrets.py open SEALED.json KEY.pem      print {key: value} of every object (exit 1 if a
                                                  value does not open)
  sealed_secrets.py seal CERT.pem NS NAME SCOPE K=V...   print a SealedSecret (JSON)
"""
import base64
import datetime
import json
import os
import struct
import sys

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.x509.oid import NameOID

CLUSTER_WIDE = "sealedsecrets.bitnami.com/cluster-wide"
NAMESPACE_WIDE = "sealedsecrets.bitnami.com/namespace-wide"


def oaep(label):
    return padding.OAEP(mgf=padding.MGF1(algorithm=hashes.SHA256()), algorithm=hashes.SHA256(), label=label or None)


def label_of(scope, namespace, name):
    return {"strict": f"{namespace}/{name}", "namespace-wide": namespace, "cluster-wide": ""}[scope].encode()


def scope_of(metadata):
    annotations = metadata.get("annotations") or {}
    if annotations.get(CLUSTER_WIDE) == "true":
        return "cluster-wide"
    if annotations.get(NAMESPACE_WIDE) == "true":
        return "namespace-wide"
    return "strict"


def self_signed(key, name):
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.timezone.utc)
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=3650))
        .sign(key, hashes.SHA256())
    )


def keys(directory):
    os.makedirs(directory, exist_ok=True)
    key = rsa.generate_private_key(public_exponent=65537, key_size=4096)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                            serialization.NoEncryption())
    open(os.path.join(directory, "key.pem"), "wb").write(pem)
    cert = self_signed(key, "sealed-secret")
    open(os.path.join(directory, "cert.pem"), "wb").write(cert.public_bytes(serialization.Encoding.PEM))
    other = ec.generate_private_key(ec.SECP256R1())
    open(os.path.join(directory, "ec-cert.pem"), "wb").write(
        self_signed(other, "not-rsa").public_bytes(serialization.Encoding.PEM))


def documents(text):
    text = text.strip()
    decoder, position, out = json.JSONDecoder(), 0, []
    while position < len(text):
        value, position = decoder.raw_decode(text, position)
        out.append(value)
        while position < len(text) and text[position].isspace():
            position += 1
    return out


def open_sealed(path, key_path):
    key = serialization.load_pem_private_key(open(key_path, "rb").read(), password=None)
    result = []
    for sealed in documents(open(path).read()):
        metadata = sealed["metadata"]
        label = label_of(scope_of(metadata), metadata.get("namespace", ""), metadata.get("name", ""))
        values = {}
        for name, value in sealed["spec"]["encryptedData"].items():
            data = base64.b64decode(value)
            (length,) = struct.unpack(">H", data[:2])
            session = key.decrypt(data[2:2 + length], oaep(label))
            values[name] = AESGCM(session).decrypt(b"\0" * 12, data[2 + length:], None).decode()
        result.append(values)
    print(json.dumps(result))


def seal(cert_path, namespace, name, scope, pairs):
    cert = x509.load_pem_x509_certificate(open(cert_path, "rb").read())
    public = cert.public_key()
    label = label_of(scope, namespace, name)
    encrypted = {}
    for pair in pairs:
        k, v = pair.split("=", 1)
        session = os.urandom(32)
        wrapped = public.encrypt(session, oaep(label))
        data = struct.pack(">H", len(wrapped)) + wrapped + AESGCM(session).encrypt(b"\0" * 12, v.encode(), None)
        encrypted[k] = base64.b64encode(data).decode()
    annotations = {}
    if scope == "cluster-wide":
        annotations[CLUSTER_WIDE] = "true"
    elif scope == "namespace-wide":
        annotations[NAMESPACE_WIDE] = "true"
    metadata = {"name": name, "namespace": namespace}
    if annotations:
        metadata["annotations"] = annotations
    print(json.dumps({
        "kind": "SealedSecret", "apiVersion": "bitnami.com/v1alpha1", "metadata": metadata,
        "spec": {"template": {"metadata": dict(metadata), "type": "Opaque"}, "encryptedData": encrypted},
    }, indent=2))


def main(argv):
    if len(argv) >= 3 and argv[1] == "keys":
        keys(argv[2])
    elif len(argv) == 4 and argv[1] == "open":
        try:
            open_sealed(argv[2], argv[3])
        except Exception as error:  # a value that does not open
            print(f"cannot open: {type(error).__name__}", file=sys.stderr)
            return 1
    elif len(argv) >= 6 and argv[1] == "seal":
        seal(argv[2], argv[3], argv[4], argv[5], argv[6:])
    else:
        print(__doc__, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
