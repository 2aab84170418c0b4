"""A hostile registry's auth and bale's command line: challenge loops, bad token services,
silent ones, monstrous challenges; through `python -m bale` no traceback, ever."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hostile import (
    ON_TIME,
    Hostile,
    Image,
    bearer,
    fails,
    head,
    hold,
    reply,
    trickle,
)
from reghelp import blob_digests

from bale.errors import RegistryError
from bale.registry import pull
from bale.registry.credentials import Credentials
from bale.registry.login import login
from bale.registry.transport import Registries
from bale.store.local import Store

# -- auth ----------------------------------------------------------------------------------


def test_a_challenge_loop_ends_after_one_renewal(
    hostile: Hostile, regs: Registries, store: Store
) -> None:
    bearer(hostile)
    hostile.route("/token", lambda s, r: reply(s, 200, b'{"token":"t","expires_in":300}'))
    fails(store, f"{hostile.host}/app:1", regs, r"401 X: UNAUTHORIZED: authentication required")
    assert hostile.hits["/v2/app/manifests/1"] == 2
    assert hostile.hits["/token"] == 2


@pytest.mark.parametrize(
    ("token_reply", "message"),
    [
        ((401, b"{}"), r"401 unauthorized: authentication required for 127\.0\.0\.1"),
        ((200, b"<html>hello</html>"), r"malformed JSON in the token service's reply for 127"),
        (
            (200, b"[" * 100_000),
            r"malformed JSON in the token service's reply for .*: nested deeper than 64",
        ),
        ((200, b'{"token": 5}'), r"the token service of 127\.0\.0\.1:\d+ sent no token"),
        ((200, b"[]"), r"the token service of .* sent no token"),
        ((200, b" " * (2 << 20)), r"token service: more than 1048576 bytes; refusing to read"),
    ],
)
def test_a_bad_token_service_is_a_located_error(
    hostile: Hostile, regs: Registries, store: Store, token_reply: tuple[int, bytes], message: str
) -> None:
    bearer(hostile)
    status, body = token_reply
    hostile.route("/token", lambda s, r: reply(s, status, body))
    fails(store, f"{hostile.host}/app:1", regs, rf"^fetch manifest {hostile.host}/app:1: {message}")


@pytest.mark.parametrize(
    ("realm", "message"),
    [
        ("http://[::1", r"named an invalid token service 'http://\[::1'"),
        ("file:///etc/passwd", r"sent a bearer challenge without a realm"),
    ],
)
def test_an_unusable_realm_is_a_located_error(
    hostile: Hostile, regs: Registries, store: Store, realm: str, message: str
) -> None:
    bearer(hostile, realm)
    fails(store, f"{hostile.host}/app:1", regs, message)


def test_a_token_service_that_never_answers_hits_the_deadline(
    hostile: Hostile, regs: Registries, store: Store
) -> None:
    bearer(hostile)
    hostile.route("/token", lambda s, r: hold(s, hostile.stop))
    fails(store, f"{hostile.host}/app:1", regs, r"did not finish within the 2 s timeout")


@pytest.mark.parametrize(
    "challenge",
    [
        'Bearer realm="' + "a" * 90_000,  # unterminated quote, 90 KB
        "Bearer " + "x=," * 30_000,
        'Bearer realm="http://127.0.0.1:1/t",' + 'k="\\' * 20_000,
    ],
)
def test_a_monstrous_challenge_is_parsed_quickly_and_refused(
    hostile: Hostile, regs: Registries, store: Store, challenge: str
) -> None:
    hostile.route("/v2/", lambda s, r: reply(s, 401, b"{}", WWW_Authenticate=challenge))
    start = time.monotonic()
    with pytest.raises(RegistryError):
        pull(store, f"{hostile.host}/app:1", registries=regs)
    assert time.monotonic() - start < ON_TIME


def test_a_token_that_cannot_be_a_header_is_a_located_error(
    hostile: Hostile, regs: Registries, store: Store
) -> None:
    bearer(hostile)
    hostile.route("/token", lambda s, r: reply(s, 200, b'{"token": "a\\r\\nX-Evil: 1"}'))
    error = fails(
        store, f"{hostile.host}/app:1", regs, r"sent a token that cannot be sent back in a header$"
    )
    assert "Evil" not in str(error)  # a credential is never printed


def test_login_to_a_silent_token_service_hits_the_deadline(
    hostile: Hostile, regs: Registries
) -> None:
    bearer(hostile)
    hostile.route("/token", lambda s, r: hold(s, hostile.stop))
    start = time.monotonic()
    with pytest.raises(
        RegistryError,
        match=rf"^login {hostile.host}: {hostile.host} did not "
        r"finish within the 2 s timeout$",
    ):
        login(regs, hostile.host, Credentials("u", "p"))
    assert time.monotonic() - start < ON_TIME


# -- through the command line --------------------------------------------------------------


def _bale(
    tmp_path: Path, hostile: Hostile, *args: str, **env: str
) -> subprocess.CompletedProcess[str]:
    config = tmp_path / "registries.toml"
    config.write_text(f'[registry."{hostile.host}"]\nhttp = true\n')
    full = {
        **os.environ,
        "BALE_ROOT": str(tmp_path / "root"),
        "DOCKER_CONFIG": str(tmp_path),
        "BALE_REGISTRIES_CONFIG": str(config),
        **env,
    }
    full.pop("BALE_DEBUG", None)
    return subprocess.run(
        [sys.executable, "-m", "bale", *args],
        capture_output=True,
        text=True,
        env=full,
        timeout=120,
        check=False,
    )


def test_cli_pull_from_a_silent_registry_ends_on_time_with_the_setting_named(
    hostile: Hostile, tmp_path: Path
) -> None:
    hostile.route("/v2/app/manifests/1", lambda s, r: hold(s, hostile.stop))
    start = time.monotonic()
    done = _bale(tmp_path, hostile, "pull", f"{hostile.host}/app:1", BALE_REGISTRY_TIMEOUT="2")
    assert time.monotonic() - start < ON_TIME + 5  # interpreter start-up included
    assert done.returncode != 0
    assert "Traceback" not in done.stderr and "internal error" not in done.stderr
    assert done.stderr.splitlines() == [
        f"ERROR: fetch manifest {hostile.host}/app:1: {hostile.host} did not finish within "
        "the 2 s timeout",
        "hint: raise it with BALE_REGISTRY_TIMEOUT=SECONDS, or timeout = SECONDS under "
        f'[limits] or [registry."{hostile.host}"] in {tmp_path / "registries.toml"}',
    ]


def test_cli_pull_of_a_trickling_blob_names_the_minimum_rate(
    hostile: Hostile, tmp_path: Path, image: Image
) -> None:
    blob = image.blobs[str(image.layer.digest)]
    hostile.route(
        f"/v2/app/blobs/{image.layer.digest}",
        lambda s, r: (
            s.sendall(head(200, {"Content-Length": str(len(blob))})),
            trickle(s, blob, hostile.stop, every=0.05),
        ),
    )
    done = _bale(
        tmp_path,
        hostile,
        "pull",
        f"{hostile.host}/app:1",
        BALE_REGISTRY_MIN_RATE="2000",
        BALE_REGISTRY_RATE_WINDOW="2",
    )
    assert done.returncode != 0
    assert "Traceback" not in done.stderr and "internal error" not in done.stderr
    assert "below the minimum rate of 2000 bytes/s" in done.stderr
    assert "hint: raise it with BALE_REGISTRY_MIN_RATE=BYTES_PER_SECOND" in done.stderr
    # No partial blob: the store holds nothing, not even an ingest.
    with Store(tmp_path / "root") as store:
        assert blob_digests(store) == set() and store.content.ingests() == []


def test_cli_redirect_loop_is_an_error_not_a_crash(hostile: Hostile, tmp_path: Path) -> None:
    hostile.route(
        "/v2/app/manifests/1",
        lambda s, r: s.sendall(
            head(302, {"Location": "/v2/app/manifests/1", "Content-Length": "0"})
        ),
    )
    done = _bale(tmp_path, hostile, "pull", f"{hostile.host}/app:1")
    assert done.returncode != 0
    assert "Traceback" not in done.stderr and "internal error" not in done.stderr
    assert "redirected too many times" in done.stderr


def test_bad_limit_settings_are_reported(hostile: Hostile, tmp_path: Path) -> None:
    done = _bale(tmp_path, hostile, "pull", f"{hostile.host}/app:1", BALE_REGISTRY_TIMEOUT="soon")
    assert done.returncode != 0 and "Traceback" not in done.stderr
    assert "environment: timeout must be a number, not 'soon'" in done.stderr
