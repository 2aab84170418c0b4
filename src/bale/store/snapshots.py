"""Snapshots: writable and read-only filesystem trees over chains of committed parents.

    prepare(key, parent) -> ActiveSnapshot   writable; mounts describe how to see it
    view(key, parent)    -> ActiveSnapshot   read-only
    commit(name, key)                        the active snapshot becomes immutable `name`
    remove(key)                              anything without children

Only committed snapshots can be parents: an active one changes under its children. Two
drivers share this lifecycle:
- overlay (the default when overlayfs mounts under the root): each snapshot is an upper
  directory; a chain mounts as one overlay. The upper directory of a step is its diff.
- copy: each snapshot is a full tree, made by copying its parent. Slower, works anywhere.

Layout under the root: `metadata.db` (sqlite, WAL) and `<id>/fs` (+ `<id>/work` for
overlay) per snapshot.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import time
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from bale import owner
from bale.errors import AlreadyExists, FailedPrecondition, InvalidArgument, NotFound, Unavailable
from bale.mounts import Mount, mount, unmount
from bale.store.overlay import is_opaque
from bale.store.sqlite import Database
from bale.trees import remove_tree, walk

Kind = Literal["active", "view", "committed"]
Driver = Literal["overlay", "copy"]

# Active snapshots and views record the process that made them, so the ones a killed build
# left behind can be told from those of a build still running.
OWNER_LABEL = "bale.owner"
MIGRATIONS: tuple[str, ...] = (
    # 0 → 1: the initial schema (IF NOT EXISTS: databases from before versioning have it).
    """
    CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
    CREATE TABLE IF NOT EXISTS snapshots (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        key TEXT NOT NULL UNIQUE,
        kind TEXT NOT NULL CHECK (kind IN ('active', 'view', 'committed')),
        parent TEXT REFERENCES snapshots(key),
        created REAL NOT NULL,
        labels TEXT NOT NULL DEFAULT '{}'
    );
    CREATE INDEX IF NOT EXISTS snapshots_parent ON snapshots(parent);
    """,
    # 1 → 2: leases: the committed snapshots a running build uses cannot be removed.
    """
    CREATE TABLE leases (
        lease TEXT NOT NULL,
        key TEXT NOT NULL,
        owner TEXT NOT NULL,           -- the process holding it (bale.owner)
        PRIMARY KEY (lease, key)
    );
    CREATE INDEX leases_key ON leases(key);
    """,
)
SCHEMA_VERSION = len(MIGRATIONS)


@dataclass(frozen=True)
class SnapshotInfo:
    key: str
    kind: Kind
    parent: str  # "" when the snapshot starts from an empty tree
    created: float
    labels: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ActiveSnapshot:
    """A prepared (writable) or view (read-only) snapshot and how to mount it."""

    key: str
    parent: str
    mounts: tuple[Mount, ...]
    readonly: bool


@dataclass(frozen=True)
class DiffSource:
    """Where the changes of an active snapshot can be read.

    `upper` is the overlay upper directory (kind "upperdir") or the full tree (kind
    "trees"), `lower` the full parent tree to compare it with (None: empty parent).
    """

    kind: Literal["upperdir", "trees"]
    upper: str
    lower: str | None


def overlay_supported(directory: Path) -> bool:
    """True when an overlay with upper and work directories mounts under `directory`."""
    probe = directory / f".probe-{uuid.uuid4().hex[:8]}"
    try:
        for sub in ("l", "u", "w", "m"):
            (probe / sub).mkdir(parents=True)
        try:
            mount(
                "overlay",
                str(probe / "m"),
                "overlay",
                0,
                f"lowerdir={probe / 'l'},upperdir={probe / 'u'},workdir={probe / 'w'}",
            )
        except Unavailable:
            return False
        unmount(str(probe / "m"))
        return True
    finally:
        remove_tree(probe, ignore_errors=True)


class Snapshotter:
    def __init__(self, root: str | os.PathLike[str], driver: str = "auto") -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self._database = Database(self.root / "metadata.db", MIGRATIONS)
        self._lock = self._database.lock
        self._db = self._database.db
        self.driver: Driver = self._choose_driver(driver)

    def _choose_driver(self, wanted: str) -> Driver:
        if wanted not in ("auto", "overlay", "copy"):
            raise InvalidArgument(
                f"unknown snapshot driver {wanted!r}", hint="use auto, overlay or copy"
            )
        with self._tx():
            row = self._db.execute("SELECT value FROM meta WHERE name='driver'").fetchone()
            stored = row[0] if row else None
            if stored is not None and wanted not in ("auto", stored):
                raise FailedPrecondition(
                    f"snapshots in {self.root} were made by the {stored} driver, not {wanted}"
                )
            if stored is None:
                if wanted == "auto":
                    stored = "overlay" if overlay_supported(self.root) else "copy"
                elif wanted == "overlay" and not overlay_supported(self.root):
                    raise Unavailable(
                        f"overlayfs does not mount under {self.root}",
                        hint="use the copy snapshot driver",
                    )
                else:
                    stored = wanted
                self._db.execute(
                    "INSERT INTO meta(name, value) VALUES ('driver', ?), ('schema', ?)",
                    (stored, str(SCHEMA_VERSION)),
                )
        assert stored in ("overlay", "copy")
        return "overlay" if stored == "overlay" else "copy"

    def close(self) -> None:
        self._database.close()

    @contextlib.contextmanager
    def _tx(self) -> Iterator[None]:
        with self._database.transaction():
            yield

    # -- queries ---------------------------------------------------------------------------

    def _row(self, key: str) -> tuple[int, SnapshotInfo] | None:
        row = self._db.execute(
            "SELECT id, key, kind, parent, created, labels FROM snapshots WHERE key=?", (key,)
        ).fetchone()
        if row is None:
            return None
        return row[0], SnapshotInfo(row[1], row[2], row[3] or "", row[4], json.loads(row[5]))

    def _get(self, key: str) -> tuple[int, SnapshotInfo]:
        found = self._row(key)
        if found is None:
            raise NotFound(f"snapshot {key!r} not found")
        return found

    def stat(self, key: str) -> SnapshotInfo:
        with self._lock:
            return self._get(key)[1]

    def lookup(self, name: str, *, lease: str = "") -> SnapshotInfo | None:
        """The committed snapshot called `name`, or None. With `lease`, it is leased in the
        same transaction: from here on no prune can remove it until the lease ends."""
        if not lease:
            with self._lock:
                found = self._row(name)
        else:
            with self._tx():
                found = self._row(name)
                if found is not None and found[1].kind == "committed":
                    self._lease(lease, name)
        if found is None or found[1].kind != "committed":
            return None
        return found[1]

    def _lease(self, lease: str, key: str) -> None:
        self._db.execute(
            "INSERT OR IGNORE INTO leases(lease, key, owner) VALUES (?, ?, ?)",
            (lease, key, owner.current()),
        )

    @contextlib.contextmanager
    def lease(self) -> Iterator[str]:
        """A lease id for `lookup`/`commit`; what it holds is released when the block ends
        (or, if the process is killed, by the next `prune_orphans`)."""
        lease_id = f"lease-{uuid.uuid4().hex}"
        try:
            yield lease_id
        finally:
            with self._tx():
                self._db.execute("DELETE FROM leases WHERE lease=?", (lease_id,))

    def _leased(self, key: str) -> bool:
        rows = self._db.execute("SELECT owner FROM leases WHERE key=?", (key,)).fetchall()
        return any(owner.alive(str(r[0])) for r in rows)

    def all(self) -> list[SnapshotInfo]:
        with self._lock:
            rows = self._db.execute(
                "SELECT key, kind, parent, created, labels FROM snapshots ORDER BY id"
            ).fetchall()
        return [SnapshotInfo(r[0], r[1], r[2] or "", r[3], json.loads(r[4])) for r in rows]

    def _dir(self, snapshot_id: int) -> Path:
        return self.root / str(snapshot_id)

    def _chain(self, parent: str) -> list[Path]:
        """The `fs` directories of `parent` and its ancestors, nearest first."""
        out: list[Path] = []
        key = parent
        while key:
            sid, info = self._get(key)
            out.append(self._dir(sid) / "fs")
            key = info.parent
        return out

    # -- lifecycle -------------------------------------------------------------------------

    def _create(
        self, key: str, parent: str, kind: Kind, labels: Mapping[str, str] | None
    ) -> tuple[int, list[Path]]:
        if not key:
            raise InvalidArgument("a snapshot key must not be empty")
        with self._tx():
            if self._row(key) is not None:
                raise AlreadyExists(f"snapshot {key!r} already exists")
            chain: list[Path] = []
            if parent:
                _, pinfo = self._get(parent)
                if pinfo.kind != "committed":
                    raise FailedPrecondition(
                        f"snapshot {parent!r} is {pinfo.kind}; only committed snapshots can be "
                        "parents"
                    )
                chain = self._chain(parent)
            cur = self._db.execute(
                "INSERT INTO snapshots(key, kind, parent, created, labels) VALUES (?,?,?,?,?)",
                (
                    key,
                    kind,
                    parent or None,
                    time.time(),
                    json.dumps({**(labels or {}), OWNER_LABEL: owner.current()}),
                ),
            )
            sid = int(cur.lastrowid or 0)
        return sid, chain

    def prepare(
        self, key: str, parent: str = "", *, labels: Mapping[str, str] | None = None
    ) -> ActiveSnapshot:
        """A new writable snapshot on top of committed `parent` ("" for an empty tree)."""
        sid, chain = self._create(key, parent, "active", labels)
        try:
            base = self._dir(sid)
            fs = base / "fs"
            base.mkdir(exist_ok=True)
            if self.driver == "copy" and chain:
                _copy_tree(chain[0], fs)
            else:
                fs.mkdir()
            if self.driver == "overlay" and chain:
                (base / "work").mkdir()
        except BaseException:
            self._forget(key, sid)
            raise
        return ActiveSnapshot(key, parent, self._mounts(sid, chain, readonly=False), False)

    def view(
        self, key: str, parent: str, *, labels: Mapping[str, str] | None = None
    ) -> ActiveSnapshot:
        """A new read-only snapshot of committed `parent`."""
        sid, chain = self._create(key, parent, "view", labels)
        try:
            (self._dir(sid) / "fs").mkdir(parents=True)
        except BaseException:
            self._forget(key, sid)
            raise
        return ActiveSnapshot(key, parent, self._mounts(sid, chain, readonly=True), True)

    def mounts(self, key: str) -> tuple[Mount, ...]:
        with self._lock:
            sid, info = self._get(key)
            if info.kind == "committed":
                raise FailedPrecondition(
                    f"snapshot {key!r} is committed; make a view or prepare on top of it"
                )
            chain = self._chain(info.parent) if info.parent else []
        return self._mounts(sid, chain, readonly=info.kind == "view")

    def _mounts(self, sid: int, chain: list[Path], *, readonly: bool) -> tuple[Mount, ...]:
        base = self._dir(sid)
        if readonly:
            if self.driver == "copy" or len(chain) == 1:
                source = chain[0] if chain else base / "fs"
                return (Mount("bind", str(source), ("rbind", "ro")),)
            if not chain:
                return (Mount("bind", str(base / "fs"), ("rbind", "ro")),)
            lower = ":".join(str(p) for p in chain)
            return (Mount("overlay", "overlay", ("ro", f"lowerdir={lower}")),)
        if self.driver == "copy" or not chain:
            return (Mount("bind", str(base / "fs"), ("rbind", "rw")),)
        lower = ":".join(str(p) for p in chain)
        return (
            Mount(
                "overlay",
                "overlay",
                (
                    f"lowerdir={lower}",
                    f"upperdir={base / 'fs'}",
                    f"workdir={base / 'work'}",
                    "index=off",
                ),
            ),
        )

    def diff_source(self, key: str) -> DiffSource:
        """Where the changes of active snapshot `key` relative to its parent are."""
        with self._lock:
            sid, info = self._get(key)
            if info.kind != "active":
                raise FailedPrecondition(f"snapshot {key!r} is {info.kind}, not active")
            chain = self._chain(info.parent) if info.parent else []
        upper = str(self._dir(sid) / "fs")
        if self.driver == "overlay":
            return DiffSource("upperdir", upper, None)
        return DiffSource("trees", upper, str(chain[0]) if chain else None)

    def drop_copied_up_dirs(self, key: str) -> int:
        """Remove from active overlay snapshot `key` the directories overlay only copied up:
        empty in the upper dir, not opaque, and with the owner and mode they have below (a
        file made and removed inside, such as a mount point, changes nothing but the mtime).
        The snapshot must not be mounted. Returns how many were removed."""
        if self.driver != "overlay":
            return 0
        with self._lock:
            sid, info = self._get(key)
            if info.kind != "active":
                raise FailedPrecondition(f"snapshot {key!r} is {info.kind}, not active")
            lowers = self._chain(info.parent) if info.parent else []
        upper = self._dir(sid) / "fs"
        removed = 0
        for dirpath, dirnames, filenames in walk(upper, topdown=False):
            here = Path(dirpath)
            if here == upper or filenames or any((here / d).exists() for d in dirnames):
                continue
            if os.path.islink(here) or is_opaque(here):
                continue
            rel = here.relative_to(upper)
            st = here.lstat()
            below = next((low / rel for low in lowers if os.path.lexists(low / rel)), None)
            if below is None or below.is_symlink() or not below.is_dir():
                continue
            lst = below.lstat()
            if (st.st_mode, st.st_uid, st.st_gid) == (lst.st_mode, lst.st_uid, lst.st_gid):
                with contextlib.suppress(OSError):
                    here.rmdir()
                    removed += 1
        return removed

    def commit(
        self, name: str, key: str, *, labels: Mapping[str, str] | None = None, lease: str = ""
    ) -> SnapshotInfo:
        """Freeze active snapshot `key` as `name`; `key` is gone afterwards.

        The caller unmounts it first: a commit under a live mount would not be immutable.
        """
        if not name:
            raise InvalidArgument("a snapshot name must not be empty")
        with self._tx():
            sid, info = self._get(key)
            if info.kind != "active":
                raise FailedPrecondition(
                    f"snapshot {key!r} is {info.kind}; only active ones commit"
                )
            if self._row(name) is not None:
                raise AlreadyExists(f"snapshot {name!r} already exists")
            merged = {
                k: v for k, v in {**info.labels, **(labels or {})}.items() if k != OWNER_LABEL
            }
            self._db.execute(
                "UPDATE snapshots SET key=?, kind='committed', labels=?, created=? WHERE id=?",
                (name, json.dumps(merged), time.time(), sid),
            )
            if lease:
                self._lease(lease, name)
        work = self._dir(sid) / "work"
        if work.exists():
            remove_tree(work, ignore_errors=True)
        return SnapshotInfo(name, "committed", info.parent, time.time(), merged)

    def remove(self, key: str) -> None:
        """Remove a snapshot that no other snapshot has as parent."""
        with self._tx():
            sid, _ = self._get(key)
            child = self._db.execute(
                "SELECT key FROM snapshots WHERE parent=? LIMIT 1", (key,)
            ).fetchone()
            if child is not None:
                raise FailedPrecondition(f"snapshot {key!r} is the parent of {child[0]!r}")
            if self._leased(key):
                raise FailedPrecondition(f"snapshot {key!r} is in use by a running build")
            self._db.execute("DELETE FROM snapshots WHERE id=?", (sid,))
        _rmtree(self._dir(sid))

    def _forget(self, key: str, sid: int) -> None:
        with self._tx():
            self._db.execute("DELETE FROM snapshots WHERE id=?", (sid,))
        _rmtree(self._dir(sid))

    def prune_orphans(self) -> list[str]:
        """Remove active snapshots and views whose process is gone, and the leases such
        processes held; the keys of the snapshots removed."""
        with self._tx():
            held = self._db.execute("SELECT DISTINCT owner FROM leases").fetchall()
            for (made_by,) in held:
                if not owner.alive(str(made_by)):
                    self._db.execute("DELETE FROM leases WHERE owner=?", (made_by,))
            rows = self._db.execute(
                "SELECT key, kind, parent, created, labels FROM snapshots "
                "WHERE kind != 'committed' ORDER BY id"
            ).fetchall()
        removed: list[str] = []
        for row in rows:
            info = SnapshotInfo(row[0], row[1], row[2] or "", row[3], json.loads(row[4]))
            made_by = info.labels.get(OWNER_LABEL, "")
            if not made_by or owner.alive(made_by):
                continue
            try:
                self.remove(info.key)
            except (NotFound, FailedPrecondition):
                continue
            removed.append(info.key)
        return removed

    @contextlib.contextmanager
    def prepared(
        self, key: str, parent: str = "", *, labels: Mapping[str, str] | None = None
    ) -> Iterator[ActiveSnapshot]:
        """prepare(), removed again if the block fails or it was not committed."""
        active = self.prepare(key, parent, labels=labels)
        try:
            yield active
        finally:
            found = self._row(key)
            if found is not None and found[1].kind == "active":
                self.remove(key)


def _copy_tree(source: Path, dest: Path) -> None:
    # cp keeps owners, modes, times, xattrs, hardlinks and device nodes; reflinks when it can.
    result = subprocess.run(
        ["cp", "-a", "--reflink=auto", "--", str(source), str(dest)],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise Unavailable(f"copying snapshot {source}: {result.stderr.strip()}")


def _rmtree(path: Path) -> None:
    if not path.exists():
        return
    try:
        remove_tree(path)
    except OSError:
        # Files made immutable or read-only directories from a step: chmod and retry.
        subprocess.run(["rm", "-rf", "--one-file-system", str(path)], check=False)
