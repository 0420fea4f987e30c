"""The on-disk store of a long audit: one JSON file per finished chunk, and its settings.

Resuming reads the finished chunks back instead of recomputing them; the settings file makes
sure they were computed with the same settings.
"""

from __future__ import annotations

import os

from dc_invariant.files import read_json, write_json


def open_store(
    store: str, resume: bool, settings: dict, chunk_size: int, n_inputs: int
) -> dict[int, tuple[dict[str, list], list]]:
    """Prepare ``store``; return the chunks it already holds when resuming."""
    os.makedirs(store, exist_ok=True)
    path = os.path.join(store, "settings.json")
    key = {k: v for k, v in settings.items() if k != "versions"}
    key.update(chunk_size=chunk_size, n_inputs=n_inputs)
    chunks = sorted(f for f in os.listdir(store) if f.startswith("chunk_") and f.endswith(".json"))
    if not resume:
        if chunks:
            raise ValueError(
                f"{store} already holds audit results; resume it (resume=True, --resume) "
                "or use an empty folder"
            )
        write_json(path, key)
        return {}
    if os.path.isfile(path):
        stored = read_json(path)
        if stored != key:
            changed = sorted(k for k in key if stored.get(k) != key[k])
            raise ValueError(f"cannot resume {store}: settings differ in {changed}")
    else:
        write_json(path, key)
    done = {}
    for name in chunks:
        saved = read_json(os.path.join(store, name))
        done[int(name[6:-5])] = (saved["columns"], saved["skipped"])
    return done


def save_chunk(store: str, start: int, columns: dict[str, list], skipped: list) -> None:
    # Complete or absent: an interruption never leaves a half-written chunk behind.
    path = os.path.join(store, f"chunk_{start:09d}.json")
    write_json(path, {"columns": columns, "skipped": skipped}, indent=None)
