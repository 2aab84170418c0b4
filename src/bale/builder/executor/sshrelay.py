"""An ssh agent socket made for one RUN step with the owner and mode its mount asks for
(`--mount=type=ssh,uid=100,gid=102,mode=0741`), relaying every connection to the agent.

BuildKit does the same: the host's agent socket keeps its own owner, the step sees a new one.
"""

from __future__ import annotations

import contextlib
import os
import selectors
import socket
import tempfile
import threading


class AgentRelay:
    def __init__(self, upstream: str, uid: int, gid: int, mode: int) -> None:
        # A short directory of its own: socket paths are limited to 108 bytes.
        self._dir = tempfile.mkdtemp(prefix="bale-ssh-")
        path = self.path = os.path.join(self._dir, "agent.sock")
        self.upstream = upstream
        self._server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._server.bind(path)
        with contextlib.suppress(PermissionError):  # a rootless build cannot give it away
            os.chown(path, uid, gid)
        os.chmod(path, mode)
        self._server.listen(16)
        threading.Thread(target=self._serve, name="ssh-relay", daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self._server.accept()
            except OSError:
                return  # closed
            threading.Thread(target=self._pipe, args=(conn,), daemon=True).start()

    def _pipe(self, conn: socket.socket) -> None:
        with conn, socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as up:
            try:
                up.connect(self.upstream)
            except OSError:
                return
            peers = {conn: up, up: conn}
            with selectors.DefaultSelector() as sel:
                for s in peers:
                    sel.register(s, selectors.EVENT_READ)
                while True:
                    for key, _ in sel.select():
                        src = key.fileobj
                        assert isinstance(src, socket.socket)
                        try:
                            data = src.recv(65536)
                            if not data:
                                return
                            peers[src].sendall(data)
                        except OSError:
                            return

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._server.shutdown(socket.SHUT_RDWR)
        self._server.close()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)
        with contextlib.suppress(OSError):
            os.rmdir(self._dir)
