"""The on-disk store of a long audit: one JSON file per finished chunk, and its settings.

Resuming reads the finished chunks back instead of recomputing them. The settings file (with
a digest of the target's weights or code) makes sure they were computed with the same settings
and target, and each chunk keeps a digest of its molecules, compared before it is reused.
"""

from __future__ import annotations

import os
from typing import NamedTuple, Optional

from dc_invariant.auditing.digest import INCOMPLETE
from dc_invariant.files import read_json, write_json

__all__ = ["StoredChunk", "check_chunk", "open_store", "save_chunk"]


class StoredChunk(NamedTuple):
    """A finished chunk read back: its rows, its skips and the digest of its molecules."""

    columns: dict[str, list]
    skipped: list
    inputs: Optional[str]


def open_store(
    store: str, resume: bool, settings: dict, chunk_size: int, n_inputs: int
) -> dict[int, StoredChunk]:
    """Prepare ``store``; return the chunks it already holds when resuming."""
    os.makedirs(store, exist_ok=True)
    path = os.path.join(store, "settings.json")
    # Versions too: chunks from another torch or RDKit would be reported under today's.
    key = {**settings, "chunk_size": chunk_size, "n_inputs": n_inputs}
    chunks = sorted(f for f in os.listdir(store) if f.startswith("chunk_") and f.endswith(".json"))
    if not resume:
        if chunks:
            raise ValueError(
                f"{store} already holds audit results; resume it (resume=True, --resume) "
                "or use an empty folder"
            )
        write_json(path, key)
        return {}
    digest = str(key.get("target_digest", ""))
    if digest.startswith(INCOMPLETE):
        raise ValueError(
            f"cannot resume {store}: the target's state could not be digested completely "
            f"({digest[len(INCOMPLETE) :].split(';')[0]}), so its stored results cannot be "
            "told from another target's; audit into an empty folder"
        )
    if os.path.isfile(path):
        stored = read_json(path)
        if stored != key:
            changed = sorted(k for k in key if stored.get(k) != key[k])
            if changed == ["target_digest"]:
                what = "the target (its weights, data or code) changed"
            elif changed == ["versions"]:
                what = f"it was computed with other library versions ({_versions(stored, key)})"
            else:
                what = f"settings differ in {changed}"
            raise ValueError(f"cannot resume {store}: {what}; audit into an empty folder")
    elif chunks:
        raise ValueError(
            f"cannot resume {store}: it holds results without their settings.json, so what "
            "made them cannot be checked; audit into an empty folder"
        )
    else:
        write_json(path, key)
    done = {}
    for name in chunks:
        saved = read_json(os.path.join(store, name))
        done[int(name[6:-5])] = StoredChunk(saved["columns"], saved["skipped"], saved.get("inputs"))
    return done


def _versions(stored: dict, current: dict) -> str:
    """``name old -> new`` for each library whose version differs."""
    old, new = stored.get("versions") or {}, current.get("versions") or {}
    names = sorted(n for n in {*old, *new} if old.get(n) != new.get(n))
    return ", ".join(f"{n} {old.get(n, 'none')} -> {new.get(n, 'none')}" for n in names)


def check_chunk(store: str, start: int, chunk: StoredChunk, inputs: str) -> None:
    """A ``ValueError`` unless the stored chunk at ``start`` was made of the same molecules."""
    if chunk.inputs != inputs:
        raise ValueError(
            f"cannot resume {store}: the molecules from input {start} on are not the ones "
            "audited there (other inputs, or another order); audit into an empty folder"
        )


def save_chunk(
    store: str, start: int, columns: dict[str, list], skipped: list, inputs: str
) -> None:
    """Write one finished chunk with the digest of its molecules (`inputs_digest`)."""
    # Complete or absent: an interruption never leaves a half-written chunk behind.
    path = os.path.join(store, f"chunk_{start:09d}.json")
    write_json(path, {"columns": columns, "skipped": skipped, "inputs": inputs}, indent=None)
