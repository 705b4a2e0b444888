"""The content digests of input files: sha256 on a few threads, balanced by size.

Hashing is most of what a key costs on a big context (bench P4), so it is kept apart from the
selection of files in inputs.py.
"""

from __future__ import annotations

import hashlib
import heapq
import os
import threading
from concurrent.futures import ThreadPoolExecutor

from prebuild.errors import ConfigError

_CHUNK = 1 << 20
PARALLEL_MIN_FILES = 16  # below this, threads cost more than they save
_FILE_COST = 16 * 1024  # bytes' worth of hashing time one open/read/close costs
_CPUS = os.cpu_count() or 1  # once: asked per image it was 3% of a 500-image plan


def digest_files(paths: list[tuple[str, int]]) -> list[str]:
    """ "sha256:<hex>" of each (path, size), in order. Each thread takes a share of the files
    balanced by size (hashlib drops the GIL, so reads and hashing overlap across threads); one
    task per thread, not per file, because per-file futures cost more than hashing a small
    file. An unreadable file is a ConfigError naming it."""
    workers = min(8, _CPUS, len(paths))
    if len(paths) < PARALLEL_MIN_FILES or workers < 2:
        return [_sha256(p, size) for p, size in paths]
    shares: list[list[int]] = [[] for _ in range(workers)]
    loads = [(0, k) for k in range(workers)]  # (bytes + per-file cost, share) as a heap
    for index in sorted(range(len(paths)), key=lambda i: -paths[i][1]):
        load, k = heapq.heappop(loads)
        shares[k].append(index)
        heapq.heappush(loads, (load + paths[index][1] + _FILE_COST, k))
    digests: list[str] = [""] * len(paths)

    def hash_share(share: list[int]) -> None:
        for index in share:
            digests[index] = _sha256(*paths[index])

    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="prebuild-hash") as pool:
        for done in [pool.submit(hash_share, share) for share in shares]:
            done.result()  # re-raises a worker's ConfigError
    return digests


_local = threading.local()


def _sha256(path: str, size: int) -> str:
    try:
        with open(path, "rb", buffering=0) as handle:
            if size <= _CHUNK:
                return "sha256:" + hashlib.sha256(handle.readall()).hexdigest()
            buf = getattr(_local, "buf", None)
            if buf is None:
                buf = _local.buf = bytearray(_CHUNK)
            view = memoryview(buf)
            digest = hashlib.sha256()
            while count := handle.readinto(buf):
                digest.update(view[:count])
            return "sha256:" + digest.hexdigest()
    except OSError as exc:
        raise ConfigError(f"cannot read input file: {exc.strerror}", file=path) from None
