"""Credentials from Docker's config file (`$DOCKER_CONFIG/config.json`, `~/.docker/config.json`).

`auths` entries hold base64 `user:password`; `credHelpers` (per registry) and `credsStore`
(default) name a `docker-credential-<name>` program that speaks get/store/erase on stdio.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bale.errors import InvalidArgument, RegistryError, Unavailable
from bale.oci import jsonread
from bale.oci.reference import DEFAULT_DOMAIN
from bale.registry.hosts import normalize_host
from bale.store.atomic import write_atomic

# Far above any real config or helper answer; a bound so a broken file cannot exhaust memory.
_MAX_CONFIG = 16 << 20
_MAX_HELPER_OUTPUT = 1 << 20

# The key Docker has always used for Docker Hub in `auths`.
DOCKER_HUB_KEY = "https://index.docker.io/v1/"


@dataclass(frozen=True)
class Credentials:
    username: str = ""
    password: str = field(default="", repr=False)

    @property
    def anonymous(self) -> bool:
        return not self.username and not self.password


ANONYMOUS = Credentials()


def config_key(host: str) -> str:
    return DOCKER_HUB_KEY if host == DEFAULT_DOMAIN else host


class DockerConfig:
    """Read and update one Docker config directory."""

    def __init__(self, directory: Path | None = None) -> None:
        if directory is None:
            env = os.environ.get("DOCKER_CONFIG")
            directory = Path(env) if env else Path.home() / ".docker"
        self.directory = directory
        self.path = directory / "config.json"

    def load(self) -> dict[str, Any]:
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return {}
        if not raw.strip():
            return {}
        return jsonread.loads_object(raw, f"Docker config {self.path}", limit=_MAX_CONFIG)

    def helper_for(self, host: str, doc: dict[str, Any] | None = None) -> str:
        doc = self.load() if doc is None else doc
        helpers = doc.get("credHelpers") or {}
        if isinstance(helpers, dict):
            for key, name in helpers.items():
                if isinstance(name, str) and _same_host(key, host):
                    return name
        store = doc.get("credsStore")
        return store if isinstance(store, str) else ""

    def get(self, host: str) -> Credentials:
        """Credentials for a registry host (`docker.io`, `127.0.0.1:5000`), else anonymous."""
        doc = self.load()
        helper = self.helper_for(host, doc)
        if helper:
            found = _helper_get(helper, config_key(host))
            if found is not None:
                return found
        auths = doc.get("auths") or {}
        if not isinstance(auths, dict):
            raise InvalidArgument(f"malformed Docker config {self.path}: auths must be an object")
        for key, entry in auths.items():
            if isinstance(entry, dict) and _same_host(key, host):
                return _decode_entry(entry, key, self.path)
        return ANONYMOUS

    def store(self, host: str, credentials: Credentials) -> None:
        doc = self.load()
        helper = self.helper_for(host, doc)
        if helper:
            payload = {
                "ServerURL": config_key(host),
                "Username": credentials.username,
                "Secret": credentials.password,
            }
            _run_helper(helper, "store", json.dumps(payload))
            return
        auths = doc.setdefault("auths", {})
        for key in [k for k in auths if _same_host(k, host)]:
            del auths[key]
        token = f"{credentials.username}:{credentials.password}".encode()
        auths[config_key(host)] = {"auth": base64.b64encode(token).decode()}
        self._write(doc)

    def erase(self, host: str) -> bool:
        """Forget a host's credentials; False when there were none."""
        doc = self.load()
        helper = self.helper_for(host, doc)
        erased = False
        if helper:
            try:
                _run_helper(helper, "erase", config_key(host))
                erased = True
            except RegistryError:
                erased = False
        auths = doc.get("auths") or {}
        keys = [k for k in auths if _same_host(k, host)]
        for key in keys:
            del auths[key]
        if keys:
            self._write(doc)
        return erased or bool(keys)

    def _write(self, doc: dict[str, Any]) -> None:
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        text = json.dumps(doc, indent="\t") + "\n"
        write_atomic(self.path, text.encode(), mode=0o600)


def _same_host(key: str, host: str) -> bool:
    try:
        return normalize_host(key) == host
    except InvalidArgument:
        return False


def _decode_entry(entry: dict[str, Any], key: str, path: Path) -> Credentials:
    auth = entry.get("auth")
    if isinstance(auth, str) and auth:
        try:
            user, sep, password = base64.b64decode(auth, validate=False).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            user, sep, password = "", "", ""
        if not sep:
            raise InvalidArgument(f"malformed Docker config {path}: bad auth for {key!r}")
        return Credentials(user, password)
    name: object = entry.get("username")
    secret: object = entry.get("password") or entry.get("identitytoken")
    if isinstance(name, str) and isinstance(secret, str):
        return Credentials(name, secret)
    return ANONYMOUS


def _run_helper(name: str, action: str, stdin: str) -> str:
    program = f"docker-credential-{name}"
    try:
        done = subprocess.run(
            [program, action], input=stdin.encode(), capture_output=True, timeout=60, check=False
        )
    except FileNotFoundError:
        raise Unavailable(
            f"credential helper {program} is not installed",
            hint="install it or remove it from credHelpers/credsStore in the Docker config",
        ) from None
    except subprocess.TimeoutExpired:
        raise RegistryError(f"credential helper {program} {action} timed out") from None
    out = done.stdout.decode(errors="replace").strip()
    if done.returncode != 0:
        detail = out or done.stderr.decode(errors="replace").strip()
        raise RegistryError(f"credential helper {program} {action} failed: {detail}")
    return out


def _helper_get(name: str, server: str) -> Credentials | None:
    try:
        out = _run_helper(name, "get", server)
    except RegistryError as exc:
        # Helpers say "credentials not found in native keychain" with a non-zero exit.
        if "not found" in exc.message.lower():
            return None
        raise
    try:
        doc = jsonread.loads_object(out, "the answer", limit=_MAX_HELPER_OUTPUT)
    except InvalidArgument as exc:
        raise RegistryError(
            f"credential helper docker-credential-{name} get: {exc.message}"
        ) from None
    user, secret = doc.get("Username", ""), doc.get("Secret", "")
    if not isinstance(user, str) or not isinstance(secret, str):
        raise RegistryError(f"credential helper docker-credential-{name} gave malformed output")
    return Credentials(user, secret)
