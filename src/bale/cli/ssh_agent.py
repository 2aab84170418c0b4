"""`--ssh default=KEYFILE[,KEYFILE]`: buildx loads key files into an agent of its own; bale
starts `ssh-agent` for the build with those keys and stops it when the command ends."""

from __future__ import annotations

import atexit
import os
import shutil
import stat
import subprocess
import tempfile
import time

from bale.errors import InvalidArgument

_AGENT_WAIT = 10.0  # seconds for ssh-agent to create its socket


def agent_for(paths: list[str]) -> str:
    """The socket to forward: the one given, or an agent holding the given keys."""
    if len(paths) == 1 and _is_socket(paths[0]):
        return paths[0]
    keys = [os.path.expanduser(p) for p in paths]
    for key in keys:
        if not os.path.isfile(key):
            raise InvalidArgument(f"--ssh: {key} is neither an agent socket nor a key file")
    agent, add = shutil.which("ssh-agent"), shutil.which("ssh-add")
    if agent is None or add is None:
        raise InvalidArgument(
            "--ssh with a key file needs ssh-agent and ssh-add", hint="install openssh-client"
        )
    directory = tempfile.mkdtemp(prefix="bale-agent-")
    sock = os.path.join(directory, "agent.sock")
    proc = subprocess.Popen(
        [agent, "-D", "-a", sock],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )

    def stop() -> None:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        shutil.rmtree(directory, ignore_errors=True)

    atexit.register(stop)
    deadline = time.monotonic() + _AGENT_WAIT
    while not _is_socket(sock):
        if proc.poll() is not None or time.monotonic() > deadline:
            raise InvalidArgument("--ssh: ssh-agent did not start")
        time.sleep(0.02)
    env = {**os.environ, "SSH_AUTH_SOCK": sock}
    for key in keys:
        done = subprocess.run(
            [add, "-q", key],
            env=env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            reason = done.stderr.strip().splitlines()[-1] if done.stderr.strip() else "refused"
            raise InvalidArgument(
                f"--ssh: cannot load key {key}: {reason}",
                hint="a key with a passphrase must be in your own agent",
            )
    return sock


def _is_socket(path: str) -> bool:
    try:
        return stat.S_ISSOCK(os.stat(os.path.expanduser(path)).st_mode)
    except OSError:
        return False
