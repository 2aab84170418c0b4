"""Helpers for the registry tests: a Docker-token-spec token server and small multi-platform
images built in a store; the real registries come from tests/support.py."""

from __future__ import annotations

import base64
import gzip
import hashlib
import io
import json
import secrets
import subprocess
import tarfile
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from bale.oci import mediatype
from bale.oci.config import ImageConfig
from bale.oci.descriptor import Descriptor
from bale.oci.digest import Digest
from bale.oci.manifest import (
    ATTESTATION_MANIFEST,
    ATTESTATION_REF,
    ATTESTATION_TYPE,
    Index,
    Manifest,
)
from bale.oci.platform import Platform
from bale.registry.transport import RetryPolicy
from bale.store.local import Store
from support import RegistryServer, free_port, start_registry  # noqa: F401 - shared

USER, PASSWORD = "alice", "s3cret-pass"


SERVICE, ISSUER = "bale-test-registry", "bale-test-issuer"


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@dataclass
class TokenServer:
    url: str
    key: Path
    cert: Path
    # (account or "", requested scopes) of every token request, in order.
    requests: list[tuple[str, tuple[str, ...]]] = field(default_factory=list)
    # Repositories an anonymous caller may pull.
    public: tuple[str, ...] = ("public/",)
    server: ThreadingHTTPServer | None = None

    def sign(self, claims: dict[str, object]) -> str:
        der = "".join(
            line for line in self.cert.read_text().splitlines() if not line.startswith("-----")
        )
        header = {"typ": "JWT", "alg": "RS256", "x5c": [der]}
        encoded = [_b64url(json.dumps(part).encode()) for part in (header, claims)]
        signing_input = ".".join(encoded)
        signature = subprocess.run(
            ["openssl", "dgst", "-sha256", "-sign", str(self.key)],
            input=signing_input.encode(),
            capture_output=True,
            check=True,
        ).stdout
        return f"{signing_input}.{_b64url(signature)}"

    def grant(self, account: str, scope: str) -> dict[str, object] | None:
        kind, _, rest = scope.partition(":")
        name, _, actions = rest.rpartition(":")
        if kind != "repository":
            return None
        wanted = [a for a in actions.split(",") if a]
        if account == USER:
            allowed = wanted
        elif any(name.startswith(p) for p in self.public):
            allowed = [a for a in wanted if a == "pull"]
        else:
            allowed = []
        return {"type": "repository", "name": name, "actions": allowed}


def start_token_server(directory: Path) -> TokenServer:
    key, cert = directory / "token.key", directory / "token.crt"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            str(key),
            "-out",
            str(cert),
            "-days",
            "2",
            "-subj",
            "/CN=bale-test-token-issuer",
        ],
        capture_output=True,
        check=True,
    )
    state = TokenServer("", key, cert)

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            url = urllib.parse.urlsplit(self.path)
            query = urllib.parse.parse_qs(url.query)
            account = ""
            auth = self.headers.get("Authorization", "")
            if auth.startswith("Basic "):
                user, _, password = base64.b64decode(auth[6:]).decode().partition(":")
                if (user, password) != (USER, PASSWORD):
                    body = b'{"details":"incorrect username or password"}'
                    self.send_response(401)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                    return
                account = user
            scopes = tuple(query.get("scope", []))
            state.requests.append((account, scopes))
            access = [g for s in scopes for item in s.split() if (g := state.grant(account, item))]
            now = int(time.time())
            token = state.sign(
                {
                    "iss": ISSUER,
                    "sub": account,
                    "aud": query.get("service", [""])[0],
                    "exp": now + 300,
                    "nbf": now - 10,
                    "iat": now,
                    "jti": secrets.token_hex(8),
                    "access": access,
                }
            )
            body = json.dumps({"token": token, "expires_in": 300}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    state.server = server
    state.url = f"http://127.0.0.1:{server.server_address[1]}/token"
    return state


@dataclass
class TokenRegistry:
    registry: RegistryServer
    tokens: TokenServer


FAST_RETRY = RetryPolicy(attempts=4, initial_delay=0.05, max_delay=0.2)


def layer_tar(files: dict[str, bytes]) -> tuple[bytes, Digest]:
    """(gzip blob, diff id) of a tar holding the files."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o755
            info.mtime = 0
            tar.addfile(info, io.BytesIO(data))
    tar_bytes = raw.getvalue()
    return gzip.compress(tar_bytes, mtime=0), Digest.of(tar_bytes)


def noise(seed: str, size: int) -> bytes:
    """Deterministic incompressible bytes."""
    out = bytearray()
    counter = 0
    while len(out) < size:
        out += hashlib.sha256(f"{seed}/{counter}".encode()).digest()
        counter += 1
    return bytes(out[:size])


def make_image(
    store: Store,
    name: str,
    platforms: tuple[str, ...] = ("linux/amd64", "linux/arm64"),
    *,
    layers: int = 2,
    layer_size: int = 64 << 10,
    seed: str = "",
    attestations: bool = True,
    shared_base: bool = True,
    single: bool = False,
    sbom: bool = False,
    attestation_layout: str = "legacy",
) -> Descriptor:
    """A multi-platform image (with BuildKit-style attestation manifests), named `name`.

    `attestation_layout`: "legacy" (an image manifest with an unknown/unknown config, as bale
    writes), "artifact" (BuildKit's OCI artifact: empty config, artifactType, subject) or
    "subject" (the artifact without the index annotations: found by its subject alone).
    """
    seed = seed or name
    entries: list[Descriptor] = []
    for plat_text in platforms:
        plat = Platform.parse(plat_text)
        layer_descs, diff_ids = [], []
        for i in range(layers):
            # The first layer is shared between platforms, as a common base would be.
            layer_seed = f"{seed}/base" if i == 0 and shared_base else f"{seed}/{plat}/{i}"
            blob, diff_id = layer_tar({f"file{i}": noise(layer_seed, layer_size)})
            digest, _ = store.put_blob(blob)
            layer_descs.append(Descriptor(mediatype.OCI_LAYER_GZIP, digest, len(blob)))
            diff_ids.append(diff_id)
        config = ImageConfig(platform=plat, diff_ids=tuple(diff_ids)).encode()
        config_desc = store.put_document(config, mediatype.OCI_CONFIG)
        manifest = Manifest(config_desc, tuple(layer_descs)).encode()
        manifest_desc = store.put_document(manifest, mediatype.OCI_MANIFEST, platform=plat)
        entries.append(manifest_desc)
        if attestations:
            entries.append(
                _attestation(store, manifest_desc, seed, sbom=sbom, layout=attestation_layout)
            )
    if single:
        # One platform, named by its manifest (as a per-platform push-by-digest build).
        manifest_target = Descriptor(entries[0].media_type, entries[0].digest, entries[0].size)
        store.set_image(name, manifest_target)
        return manifest_target
    index = Index(tuple(entries)).encode()
    target = store.put_document(index, mediatype.OCI_INDEX)
    store.set_image(name, target)
    return target


def statement(predicate_type: str, subject: Descriptor, predicate: object) -> bytes:
    return json.dumps(
        {
            "_type": "https://in-toto.io/Statement/v0.1",
            "predicateType": predicate_type,
            "subject": [{"name": "_", "digest": {"sha256": subject.digest.hex}}],
            "predicate": predicate,
        }
    ).encode()


def _attestation(
    store: Store, subject: Descriptor, seed: str, *, sbom: bool, layout: str
) -> Descriptor:
    statements = [
        ("https://slsa.dev/provenance/v0.2", {"builder": {"id": seed}, "buildType": "bale"})
    ]
    if sbom:
        statements.append(
            (
                "https://spdx.dev/Document",
                {
                    "SPDXID": "SPDXRef-DOCUMENT",
                    "name": f"sbom-{seed}",
                    "packages": [{"name": "busybox", "size": 1000000}],
                },
            )
        )
    layers = []
    for predicate_type, predicate in statements:
        data = statement(predicate_type, subject, predicate)
        digest, _ = store.put_blob(data)
        layers.append(
            Descriptor(
                mediatype.IN_TOTO,
                digest,
                len(data),
                annotations=(("in-toto.io/predicate-type", predicate_type),),
            )
        )
    annotations = {ATTESTATION_REF: str(subject.digest), ATTESTATION_TYPE: ATTESTATION_MANIFEST}
    subject_desc = Descriptor(subject.media_type, subject.digest, subject.size)
    if layout == "legacy":
        config = ImageConfig(
            platform=Platform("unknown", "unknown"),
            diff_ids=tuple(Digest.of(store.content.read_bytes(d.digest)) for d in layers),
        ).encode()
        att = Manifest(store.put_document(config, mediatype.OCI_CONFIG), tuple(layers))
    else:
        empty, _ = store.put_blob(b"{}")
        att = Manifest(
            Descriptor(mediatype.OCI_EMPTY, empty, 2),
            tuple(layers),
            subject=subject_desc,
            artifact_type=mediatype.ATTESTATION_ARTIFACT,
        )
    return store.put_document(
        att.encode(),
        mediatype.OCI_MANIFEST,
        platform=Platform("unknown", "unknown"),
        annotations=annotations if layout != "subject" else {},
    )


def blob_digests(store: Store) -> set[Digest]:
    return {b.digest for b in store.content.walk()}
