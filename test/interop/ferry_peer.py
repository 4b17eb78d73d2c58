#!/usr/bin/python3
"""A second implementation of the Ferry wire protocol, written from docs/protocol.md alone.

Python 3.11 with Debian's python3-cryptography, python3-openssl (pyOpenSSL: TLS 1.3 with a client
certificate and export_keying_material) and python3-msgpack. Used by test/interop/python-peer.test.ts
to prove the document is enough to interoperate with a running Ferry daemon:

  fetch  --key B…|A…|G… --connect HOST:PORT --path P --out FILE
         dial the daemon, run the handshake, take its Index (every signature checked with the
         verify key), fetch P's blocks with Request/Response (every block hash checked), write FILE.
         With an invite (G…) it proves its grant (grant + grantProof) instead of RO.
  fetch  --key E… --open-with B… …
         the same at the ENC level: the records are ENC-facing (encrypted path, signed `sealed`),
         the stored blocks come one per Request; R (from the B key) opens records and blocks
         as docs/encryption.md describes.
  serve  --key A… (--listen HOST:PORT | --connect HOST:PORT) --path P --content FILE
         run the handshake (as TLS server when listening: Ferry dials us), announce P in a signed
         Index record and serve its blocks until the daemon announces it holds P with those blocks.

Prints one JSON line per event on stdout ({"event": …}); exits 0 on success, 1 with {"event":"error"}.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import hmac
import json
import os
import secrets
import socket
import struct
import sys
import time
import datetime

import msgpack
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.x509.oid import NameOID
from OpenSSL import SSL, crypto

# ---------------------------------------------------------------- keys (protocol.md "Keys, device identities and IDs")

SALT = b"ferry capability keys v1"
PAYLOAD_LENGTHS = {"A": 32, "B": 64, "E": 64, "G": 64 + 32 + 175}


class FerryError(Exception):
    def __init__(self, code: str, message: str):
        super().__init__(f"{code}: {message}")
        self.code = code


def b32encode(data: bytes) -> str:
    return base64.b32encode(data).decode("ascii").rstrip("=")


def b32decode(text: str) -> bytes:
    data = base64.b32decode(text + "=" * (-len(text) % 8))
    if b32encode(data) != text:  # ones in the unused low bits of the last character
        raise FerryError("KEY_CHECKSUM", "non-zero trailing bits")
    return data


def hkdf(ikm: bytes, label: str) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=SALT, info=label.encode("utf-8")).derive(ikm)


class FolderKeys:
    """What a key's text gives: the level, N, R (RO/RW), S (RW), the verify key, proof keys, folder ID."""

    def __init__(self, text: str):
        text = text.strip()
        kind, body = text[0].upper(), text[1:].upper()
        raw = b32decode(body)
        payload, checksum = raw[:-4], raw[-4:]
        if len(payload) not in PAYLOAD_LENGTHS.values():
            raise FerryError("KEY_NOT_FERRY", f"payload of {len(payload)} bytes")
        if hashlib.sha256(kind.encode("ascii") + payload).digest()[:4] != checksum:
            raise FerryError("KEY_CHECKSUM", "checksum does not match")
        if kind not in PAYLOAD_LENGTHS:
            raise FerryError("KEY_UNKNOWN_TYPE", kind)
        if PAYLOAD_LENGTHS[kind] != len(payload):
            raise FerryError("KEY_NOT_FERRY", f"{kind} key of {len(payload)} bytes")
        self.kind = kind
        self.S = self.R = None
        self.sign_key: Ed25519PrivateKey | None = None
        if kind == "A":
            self.level = "rw"
            self.S = payload
            self.R = hkdf(self.S, "ro")
            self.N = hkdf(self.R, "enc")
            self.sign_key = Ed25519PrivateKey.from_private_bytes(hkdf(self.S, "sign"))
            self.verify_key = self.sign_key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        elif kind == "B":
            self.level = "ro"
            self.R, self.verify_key = payload[:32], payload[32:64]
            self.N = hkdf(self.R, "enc")
        elif kind == "E":
            self.level = "enc"
            self.N, self.verify_key = payload[:32], payload[32:64]
        else:  # G: an invite (protocol.md "Grants"): N, verify key, grant key seed, signed grant
            self.level = "grant"
            self.N, self.verify_key = payload[:32], payload[32:64]
            self.grant_key = Ed25519PrivateKey.from_private_bytes(payload[64:96])
            self.grant = payload[96:]
            g = self.grant
            Ed25519PublicKey.from_public_bytes(self.verify_key).verify(g[111:], b"ferry/grant/v1\x00" + g[:111])
            grant_public = self.grant_key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
            if g[0] != 1 or g[46:78] != grant_public:
                raise FerryError("GRANT_INVALID", "the invite's grant key is not the grant's")
            self.grant_level = {1: "ro", 2: "rw"}[g[37]]
            self.grant_expires_ms = int.from_bytes(g[38:46], "big")
        self.verifier = Ed25519PublicKey.from_public_bytes(self.verify_key)
        self.proof_enc = hkdf(self.N, "proof enc")
        self.proof_ro = hkdf(self.R, "proof ro") if self.R is not None else None
        self.folder_id = hashlib.sha256(b"ferry folder id\x00" + self.N + self.verify_key).digest()[:20]
        if kind == "G" and self.grant[17:37] != self.folder_id:
            raise FerryError("GRANT_INVALID", "the grant names another folder")


class EncKeys:
    """docs/encryption.md: the content key C = HKDF(R, "content") and the keys derived from it."""

    SALT = b"ferry enc v1"

    def __init__(self, keys: FolderKeys):
        if keys.R is None:
            raise FerryError("KEY_LEVEL", "opening ENC-facing records needs R (an RO or RW key)")
        c = hkdf(keys.R, "content")
        derive = lambda label: HKDF(algorithm=hashes.SHA256(), length=32, salt=self.SALT, info=label.encode()).derive(c)
        self.block = derive("block")
        self.rec_mac, self.rec_enc = derive("record mac"), derive("record enc")

    @staticmethod
    def siv_open(mac_key: bytes, enc_key: bytes, ad: bytes, sealed: bytes) -> bytes:
        iv, body = sealed[:16], sealed[16:]
        dec = Cipher(algorithms.AES(enc_key), modes.CTR(iv)).decryptor()
        plain = dec.update(body) + dec.finalize()
        want = hmac.new(mac_key, ad + b"\x00" + plain, hashlib.sha256).digest()[:16]
        if not hmac.compare_digest(want, iv):
            raise FerryError("SIGNATURE_INVALID", "sealed record does not open")
        return plain

    def open_record(self, outer: dict) -> dict:
        return msgpack.unpackb(self.siv_open(self.rec_mac, self.rec_enc, outer["path"].encode("utf-8"), outer["sealed"]), raw=False)

    def open_block(self, stored: bytes, plain_hash: bytes) -> bytes:
        nonce = hmac.new(self.block, plain_hash, hashlib.sha256).digest()[:12]
        return AESGCM(self.block).decrypt(nonce, stored, plain_hash)


# ---------------------------------------------------------------- device identity

class Device:
    def __init__(self):
        self.key = Ed25519PrivateKey.generate()
        now = datetime.datetime.now(datetime.timezone.utc)
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "ferry device")])
        self.cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(self.key.public_key())
            .serial_number(secrets.randbits(127) | 1)
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=36500))
            .sign(self.key, None)
        )
        self.id = device_id_of(self.cert)
        self.short_id = self.id[:12]


def device_id_of(cert: x509.Certificate) -> str:
    spki = cert.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return b32encode(hashlib.sha256(spki).digest())


# ---------------------------------------------------------------- framing and messages

T = {
    "Hello": 0x01, "FolderClaims": 0x02, "FolderProofs": 0x03, "ClusterState": 0x04,
    "Index": 0x10, "IndexUpdate": 0x11, "Request": 0x20, "Response": 0x21,
    "Have": 0x30, "Progress": 0x31, "Ping": 0x40, "Close": 0x41, "PeerExchange": 0x50, "Grants": 0x60,
    # Taken and ignored by this peer (introductions, relays):
    "IntroduceRequest": 0x70, "Introduce": 0x71, "IntroduceFailed": 0x72, "RelayOpen": 0x78, "RelayConnect": 0x79,
    "RelayAccept": 0x7A, "RelayRefuse": 0x7B, "RelayData": 0x7C, "RelayWindow": 0x7D, "RelayClose": 0x7E,
}
NAMES = {code: name for name, code in T.items()}
MAX_FRAME_BYTES = 16 * 1024 * 1024 + 64 * 1024
MAGIC = 0x46525259
PROTOCOL_VERSION = 3


def js_number(value):
    """A number as msgpackr writes a JS number: integers in the 32-bit ranges as msgpack integers, every
    other number (2^32 and above, fractions) as float64. Signing bytes must be byte-identical."""
    if isinstance(value, bool):
        return value
    if isinstance(value, float) and value.is_integer() and -(2**31) <= value < 2**32:
        return int(value)
    if isinstance(value, int) and not (-(2**31) <= value < 2**32):
        return float(value)
    return value


def record_signing_bytes(folder_id: bytes, r: dict) -> bytes:
    pairs = sorted(([d, js_number(c)] for d, c in r["version"]), key=lambda p: p[0])
    fields = [
        "ferry/record/v1", folder_id, r["path"], r["type"], js_number(r["size"]), js_number(r["mode"]),
        js_number(r["mtimeMs"]), pairs, r["modifiedBy"], js_number(r["blockSize"]), list(r["blocks"]),
        r.get("linkTarget"), r["deleted"],
    ]
    if r.get("sealed") is not None:
        fields.append(r["sealed"])
    return msgpack.packb(fields, use_bin_type=True)


class Link:
    """One TLS 1.3 connection carrying Ferry frames."""

    def __init__(self, conn: SSL.Connection, role: int):
        self.conn = conn
        self.role = role  # 1 = TLS client, 2 = server
        self.buf = b""

    def send(self, name: str, body: dict) -> None:
        payload = bytes([T[name]]) + msgpack.packb(body, use_bin_type=True)
        self.conn.sendall(struct.pack(">I", len(payload)) + payload)

    def _read(self, n: int) -> bytes:
        while len(self.buf) < n:
            try:
                chunk = self.conn.recv(1 << 20)
            except (SSL.ZeroReturnError, SSL.SysCallError):
                chunk = b""
            if not chunk:
                raise FerryError("CLOSED", "connection closed by the peer")
            self.buf += chunk
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def recv(self) -> tuple[str, dict]:
        (length,) = struct.unpack(">I", self._read(4))
        if length < 1 or length > MAX_FRAME_BYTES:
            raise FerryError("FRAME_TOO_LARGE", str(length))
        frame = self._read(length)
        name = NAMES.get(frame[0])
        if name is None:
            raise FerryError("PROTOCOL", f"unknown type {frame[0]:#x}")
        body = msgpack.unpackb(frame[1:], raw=False, strict_map_key=False)
        if not isinstance(body, dict):
            raise FerryError("PROTOCOL", f"{name} body is not a map")
        if name == "Close":
            raise FerryError("PEER_CLOSED", f"{body.get('code')}: {body.get('reason')}")
        return name, body

    def expect(self, want: str) -> dict:
        while True:
            name, body = self.recv()
            if name == "Ping":
                continue
            if name != want:
                raise FerryError("PROTOCOL", f"expected {want}, got {name}")
            return body

    def close(self, code: str, reason: str) -> None:
        try:
            self.send("Close", {"code": code, "reason": reason})
            self.conn.shutdown()
        except Exception:
            pass
        self.conn.close()


def tls_context(device: Device, server: bool) -> SSL.Context:
    ctx = SSL.Context(SSL.TLS_METHOD)
    ctx.set_min_proto_version(SSL.TLS1_3_VERSION)
    ctx.set_max_proto_version(SSL.TLS1_3_VERSION)
    ctx.use_certificate(crypto.X509.from_cryptography(device.cert))
    ctx.use_privatekey(crypto.PKey.from_cryptography_key(device.key))
    # No CA: a peer is its key. Ask for (and require) the peer's certificate, accept any.
    ctx.set_verify(SSL.VERIFY_PEER | SSL.VERIFY_FAIL_IF_NO_PEER_CERT, lambda *_: True)
    return ctx


def emit(event: str, **fields) -> None:
    print(json.dumps({"event": event, **fields}), flush=True)


def split_hostport(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    return host.strip("[]"), int(port)


def dial(device: Device, address: str) -> Link:
    sock = socket.create_connection(split_hostport(address), timeout=60)
    sock.settimeout(None)  # pyOpenSSL wants a blocking socket (a timeout surfaces as WantReadError)
    conn = SSL.Connection(tls_context(device, server=False), sock)
    conn.set_connect_state()
    conn.do_handshake()
    return Link(conn, role=1)


def accept(device: Device, address: str) -> Link:
    host, port = split_hostport(address)
    listener = socket.create_server((host, port))
    emit("listening", address=f"{host}:{listener.getsockname()[1]}", deviceId=device.id)
    sock, _ = listener.accept()
    listener.close()
    sock.settimeout(None)
    conn = SSL.Connection(tls_context(device, server=True), sock)
    conn.set_accept_state()
    conn.do_handshake()
    return Link(conn, role=2)


# ---------------------------------------------------------------- handshake (protocol.md "Handshake")

def claim_tag(keys: FolderKeys, ekm: bytes, role: int) -> bytes:
    return hmac.new(keys.proof_enc, b"ferry/claim-tag/v1" + ekm + bytes([role]), hashlib.sha256).digest()


def proof_input(level: str, ekm: bytes, role: int, device_id: str, folder_id: bytes) -> bytes:
    lv, dev = level.encode("utf-8"), device_id.encode("utf-8")
    return (b"ferry/folder-proof/v1" + struct.pack(">H", len(lv)) + lv + ekm + bytes([role])
            + struct.pack(">H", len(dev)) + dev + folder_id)


def handshake(link: Link, device: Device, keys: FolderKeys, index_id: bytes, max_sequence: int, forge: bool = False) -> dict:
    peer_cert = link.conn.get_peer_certificate()
    if peer_cert is None:
        raise FerryError("HANDSHAKE", "peer sent no certificate")
    peer_id = device_id_of(peer_cert.to_cryptography())
    ekm = link.conn.export_keying_material(b"EXPORTER-ferry-folder-proof", 32, b"ferry/v1")
    peer_role = 3 - link.role

    # 1. Hello
    link.send("Hello", {"magic": MAGIC, "protocolVersion": PROTOCOL_VERSION, "deviceId": device.id, "deviceName": "", "softwareVersion": ""})
    hello = link.expect("Hello")
    if hello.get("magic") != MAGIC or hello.get("protocolVersion") != PROTOCOL_VERSION:
        raise FerryError("HANDSHAKE", f"magic/version {hello.get('magic')}/{hello.get('protocolVersion')}")
    if hello.get("deviceId") != peer_id:
        raise FerryError("HANDSHAKE", "Hello device ID is not the certificate's")

    # 2. FolderClaims: our tag plus decoys up to a multiple of 8, shuffled
    ours = claim_tag(keys, ekm, link.role)
    tags = [ours] + [secrets.token_bytes(32) for _ in range(7)]
    secrets.SystemRandom().shuffle(tags)
    link.send("FolderClaims", {"tags": tags})
    claims = link.expect("FolderClaims")
    theirs = claim_tag(keys, ekm, peer_role)
    matched = theirs in claims["tags"]

    # 3. FolderProofs, naming the folder by the peer's tag
    proofs = []
    if matched:
        p = {"tag": theirs, "enc": hmac.new(keys.proof_enc, proof_input("enc", ekm, link.role, device.id, keys.folder_id), hashlib.sha256).digest()}
        if keys.proof_ro is not None:
            p["ro"] = hmac.new(keys.proof_ro, proof_input("ro", ekm, link.role, device.id, keys.folder_id), hashlib.sha256).digest()
        if keys.sign_key is not None:
            p["rw"] = keys.sign_key.sign(proof_input("rw", ekm, link.role, device.id, keys.folder_id))
        if keys.level == "grant":
            p["grant"] = keys.grant
            p["grantProof"] = keys.grant_key.sign(proof_input("grant", ekm, link.role, device.id, keys.folder_id))
        if forge:  # a proof made for another session (a different ekm): the daemon must refuse it
            p["enc"] = hmac.new(keys.proof_enc, proof_input("enc", bytes(32), link.role, device.id, keys.folder_id), hashlib.sha256).digest()
        proofs.append(p)
    link.send("FolderProofs", {"proofs": proofs})
    peer_proofs = link.expect("FolderProofs")["proofs"]

    # 4. Verification: every level we can check
    access = None
    for p in peer_proofs:
        if p["tag"] not in tags:
            raise FerryError("HANDSHAKE", "proof for a tag we never sent")
        if p["tag"] != ours:
            raise FerryError("HANDSHAKE", "proof for a decoy tag")
        want = hmac.new(keys.proof_enc, proof_input("enc", ekm, peer_role, peer_id, keys.folder_id), hashlib.sha256).digest()
        if not hmac.compare_digest(want, p["enc"]):
            raise FerryError("HANDSHAKE", "enc proof failed")
        access = "enc"
        if p.get("ro") is not None and keys.proof_ro is not None:
            want = hmac.new(keys.proof_ro, proof_input("ro", ekm, peer_role, peer_id, keys.folder_id), hashlib.sha256).digest()
            if not hmac.compare_digest(want, p["ro"]):
                raise FerryError("HANDSHAKE", "ro proof failed")
            access = "ro"
        if p.get("rw") is not None:
            keys.verifier.verify(p["rw"], proof_input("rw", ekm, peer_role, peer_id, keys.folder_id))  # raises InvalidSignature
            access = "rw"
    emit("proofs-verified", peerDeviceId=peer_id, peerAccess=access, matched=matched)

    # 5. ClusterState
    folders = []
    if access is not None:
        folders.append({"folderId": keys.folder_id, "peerAccess": access, "indexId": index_id, "maxSequence": max_sequence,
                        "receivedIndexId": bytes(8), "receivedSequence": 0})
    link.send("ClusterState", {"folders": folders, "deviceName": "python peer", "softwareVersion": "ferry_peer.py 1"})
    state = link.expect("ClusterState")
    shared = [f for f in state["folders"] if f["folderId"] == keys.folder_id]
    if not shared or access is None:
        link.close("NO_SHARED_FOLDER", "no folder both sides accept")
        raise FerryError("NO_SHARED_FOLDER", "the daemon does not share the folder")
    emit("handshake", peerDeviceId=peer_id, peerName=state.get("deviceName"), peerAccess=access,
         ourAccess=shared[0]["peerAccess"], folderId=keys.folder_id.hex())
    return {"peerId": peer_id, "access": access, "state": shared[0]}


# ---------------------------------------------------------------- after the handshake

def check_batch(keys: FolderKeys, body: dict, peer_access: str, our_level: str) -> list[dict]:
    """Index/IndexUpdate: every present signature verified; unsigned only between two RW provers."""
    if body["folderId"] != keys.folder_id:
        raise FerryError("PROTOCOL", "batch for another folder")
    for r in body["records"]:
        sig = r.get("signature")
        if sig is None:
            if not (peer_access == "rw" and our_level == "rw"):
                raise FerryError("SIGNATURE_INVALID", f"unsigned record {r['path']}")
            continue
        if len(sig) != 64:
            raise FerryError("SIGNATURE_INVALID", f"grant signature on {r['path']} (not supported here)")
        keys.verifier.verify(sig, record_signing_bytes(keys.folder_id, r))
    return body["records"]


def fetch(args) -> None:
    keys = FolderKeys(args.key)
    device = Device()
    emit("device", deviceId=device.id, folderId=keys.folder_id.hex())
    link = dial(device, args.connect)
    hs = handshake(link, device, keys, secrets.token_bytes(8), 0, forge=args.forge_proof)
    records: dict[str, dict] = {}
    signed = 0
    deadline = time.monotonic() + 60
    opener = EncKeys(FolderKeys(args.open_with)) if keys.level == "enc" else None
    while args.path not in records:
        if time.monotonic() > deadline:
            raise FerryError("TIMEOUT", f"{args.path} not announced")
        name, body = link.recv()
        if name in ("Index", "IndexUpdate"):
            for r in check_batch(keys, body, hs["access"], keys.level):
                signed += r.get("signature") is not None
                if opener is None:
                    records[r["path"]] = r
                    continue
                # An ENC device sees only encrypted paths: open each sealed record (with R) to find ours.
                inner = opener.open_record(r)
                if inner.get("signature") is None:
                    raise FerryError("SIGNATURE_INVALID", "sealed record without its own signature")
                keys.verifier.verify(inner["signature"], record_signing_bytes(keys.folder_id, inner))
                if (inner["type"], inner["deleted"], inner["version"], len(inner["blocks"])) != (r["type"], r["deleted"], r["version"], len(r["blocks"])):
                    raise FerryError("PROTOCOL", "sealed record disagrees with the outer one")
                records[inner["path"]] = {**r, "inner": inner}
    emit("index", records=len(records), signed=signed, paths=sorted(records))
    r = records[args.path]
    if keys.level == "enc":
        return fetch_sealed(args, link, keys, records)
    if r["type"] != "file" or r["deleted"]:
        raise FerryError("PROTOCOL", f"{args.path} is not a live file")
    size, bs, blocks = r["size"], r["blockSize"], r["blocks"]
    # Runs of up to 1 MiB of adjacent blocks, one Request each
    per_run = max(1, (1 << 20) // bs)
    out = bytearray()
    request_id = 0
    requests = 0
    for first in range(0, len(blocks), per_run):
        run = blocks[first:first + per_run]
        offset = first * bs
        length = min(size, offset + len(run) * bs) - offset
        request_id += 1
        link.send("Request", {"id": request_id, "folderId": keys.folder_id, "path": args.path, "offset": offset, "size": length, "hash": b"".join(run)})
        requests += 1
        while True:
            name, body = link.recv()
            if name == "Response" and body["id"] == request_id:
                break
        if body.get("error") is not None:
            raise FerryError("RESPONSE", body["error"])
        data = body["data"]
        if len(data) != length:
            raise FerryError("BLOCK_MISMATCH", f"{len(data)} bytes for {length}")
        for i, h in enumerate(run):
            if hashlib.sha256(data[i * bs:(i + 1) * bs]).digest() != h:
                raise FerryError("BLOCK_MISMATCH", f"block {first + i}")
        out += data
    if len(out) != size:
        raise FerryError("BLOCK_MISMATCH", "size")
    tmp = args.out + ".part"
    with open(tmp, "wb") as f:
        f.write(out)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, args.out)
    emit("fetched", path=args.path, size=size, blocks=len(blocks), requests=requests, sha256=hashlib.sha256(out).hexdigest())
    link.close("SHUTDOWN", "python peer done")


def fetch_sealed(args, link: Link, keys: FolderKeys, records: dict) -> None:
    """From an ENC-level link: stored (encrypted) blocks one per Request, each checked by its stored hash,
    then opened with K_block (AES-256-GCM, the plaintext hash as AAD) and checked by the plaintext hash."""
    opener = EncKeys(FolderKeys(args.open_with))
    outer = records[args.path]
    inner = outer["inner"]
    if outer["sealed"] is None or inner["type"] != "file" or inner["deleted"]:
        raise FerryError("PROTOCOL", f"{args.path} is not a live file")
    stored_bs, plain = outer["blockSize"], bytearray()
    if stored_bs != inner["blockSize"] + 16 or outer["size"] != inner["size"] + 16 * len(inner["blocks"]):
        raise FerryError("PROTOCOL", "stored sizes are not plaintext + 16 per block")
    for i, (stored_hash, plain_hash) in enumerate(zip(outer["blocks"], inner["blocks"])):
        offset = i * stored_bs
        length = min(outer["size"], offset + stored_bs) - offset
        link.send("Request", {"id": i + 1, "folderId": keys.folder_id, "path": outer["path"], "offset": offset, "size": length, "hash": stored_hash})
        while True:
            name, body = link.recv()
            if name == "Response" and body["id"] == i + 1:
                break
        if body.get("error") is not None:
            raise FerryError("RESPONSE", body["error"])
        if hashlib.sha256(body["data"]).digest() != stored_hash:
            raise FerryError("BLOCK_MISMATCH", f"stored block {i}")
        block = opener.open_block(body["data"], plain_hash)
        if hashlib.sha256(block).digest() != plain_hash:
            raise FerryError("BLOCK_MISMATCH", f"plaintext block {i}")
        plain += block
    with open(args.out, "wb") as f:
        f.write(plain)
    emit("fetched", path=args.path, storedPath=outer["path"], size=len(plain), blocks=len(inner["blocks"]),
         requests=len(inner["blocks"]), sha256=hashlib.sha256(plain).hexdigest())
    link.close("SHUTDOWN", "python peer done")


def serve(args) -> None:
    keys = FolderKeys(args.key)
    if keys.sign_key is None:
        raise FerryError("KEY_LEVEL", "serving a file needs an RW (A…) key")
    device = Device()
    emit("device", deviceId=device.id, folderId=keys.folder_id.hex())
    with open(args.content, "rb") as f:
        content = f.read()
    bs = args.block_size
    blocks = [hashlib.sha256(content[i:i + bs]).digest() for i in range(0, len(content), bs)]
    mtime_ms = int(os.stat(args.content).st_mtime * 1000)
    record = {"path": args.path, "type": "file", "size": len(content), "mode": 0o644, "mtimeMs": mtime_ms,
              "version": [[device.short_id, 1]], "modifiedBy": device.short_id, "blockSize": bs, "blocks": blocks,
              "deleted": False, "sequence": 1}
    records = [record]
    if args.bad_record:
        # A validly signed record that breaks a record rule (an unsafe path): the daemon must skip it and take the rest.
        bad = {**record, "path": "../escaped.bin"}
        records.insert(0, bad)
    for seq, r in enumerate(records, start=1):
        r["sequence"] = seq
        if not args.unsigned:
            r["signature"] = keys.sign_key.sign(record_signing_bytes(keys.folder_id, r))
    index_id = secrets.token_bytes(8)
    link = accept(device, args.listen) if args.listen else dial(device, args.connect)
    hs = handshake(link, device, keys, index_id, len(records))
    link.send("Index", {"folderId": keys.folder_id, "indexId": index_id, "firstSequence": 1, "lastSequence": len(records), "records": records})
    emit("announced", path=args.path, size=len(content), blocks=len(blocks), records=len(records), signed=not args.unsigned)
    served = requests = 0
    deadline = time.monotonic() + 120
    while True:
        if time.monotonic() > deadline:
            raise FerryError("TIMEOUT", "the daemon did not announce the file")
        name, body = link.recv()
        if name == "Request":
            requests += 1
            start, length, hashes_ = body["offset"], body["size"], body["hash"]
            data = content[start:start + length]
            want = [hashes_[i:i + 32] for i in range(0, len(hashes_), 32)]
            ok = (body["folderId"] == keys.folder_id and body["path"] == args.path and start % bs == 0
                  and len(data) == length and want == blocks[start // bs:start // bs + len(want)])
            if ok:
                link.send("Response", {"id": body["id"], "data": data})
                served += length
            else:
                link.send("Response", {"id": body["id"], "error": "INVALID_REQUEST"})
        elif name in ("Index", "IndexUpdate"):
            for r in check_batch(keys, body, hs["access"], keys.level):
                if r["path"] == args.path and not r["deleted"] and list(r["blocks"]) == blocks:
                    emit("installed", path=args.path, peerVersion=r["version"], signed=r.get("signature") is not None,
                         servedBytes=served, requests=requests)
                    link.close("SHUTDOWN", "python peer done")
                    return


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    f = sub.add_parser("fetch")
    f.add_argument("--key", required=True)
    f.add_argument("--connect", required=True)
    f.add_argument("--path", required=True)
    f.add_argument("--out", required=True)
    f.add_argument("--forge-proof", action="store_true", help="send an ENC proof bound to another session")
    f.add_argument("--open-with", help="with an E key: the RO/RW key text whose R opens the sealed records and blocks")
    s = sub.add_parser("serve")
    s.add_argument("--key", required=True)
    group = s.add_mutually_exclusive_group(required=True)
    group.add_argument("--listen")
    group.add_argument("--connect")
    s.add_argument("--path", required=True)
    s.add_argument("--content", required=True)
    s.add_argument("--block-size", type=int, default=128 * 1024)
    s.add_argument("--unsigned", action="store_true", help="announce records unsigned (allowed between two RW provers)")
    s.add_argument("--bad-record", action="store_true", help="announce a signed record with an unsafe path first")
    args = parser.parse_args()
    try:
        (fetch if args.command == "fetch" else serve)(args)
        return 0
    except Exception as err:  # one line the test shows
        emit("error", type=type(err).__name__, message=str(err))
        return 1


if __name__ == "__main__":
    sys.exit(main())
