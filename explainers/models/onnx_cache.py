"""An ONNX export folder on disk: where the cache keeps it, its manifest, the sha256 of its
model files (checked when the backend loads it), and the temporary folders that killed exports
leave behind (removed by the next export).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from pathlib import Path
from typing import Any

from promptxray.explainers.errors import ModelLoadError
from promptxray.explainers.models.loading import cache_dir

MODEL_FILE = "model.onnx"
MANIFEST = "manifest.json"
STALE_UNKNOWN_S = 3600  # a temporary folder without a readable owner pid: stale after an hour
STALE_ALIVE_S = 24 * 3600  # even with a live owner pid (a reused pid): stale after a day


class CorruptExportError(ModelLoadError):
    """An export folder's model files do not match the checksums in its manifest."""


def model_fingerprint(path: str) -> str:
    """A cheap identity of a model folder: its config and the names and sizes of its weights."""
    folder = Path(path)
    digest = hashlib.sha256()
    config = folder / "config.json"
    if config.exists():
        digest.update(config.read_bytes())
    for weights in sorted(folder.glob("*.safetensors")) + sorted(folder.glob("*.bin")):
        digest.update(f"{weights.name}:{weights.stat().st_size}".encode())
    return digest.hexdigest()[:16]


def default_export_dir(model_id: str, fingerprint: str, quantize: str) -> Path:
    """Where the backend looks for (and the CLI writes) an export without --out."""
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in model_id)
    return cache_dir() / "onnx" / f"{safe}-{fingerprint}-{quantize}"


# --- checksums ---------------------------------------------------------------------------------
def model_files(folder: Path) -> list[Path]:
    """The model's files: model.onnx and its external data (model.onnx.data)."""
    return sorted(p for p in folder.glob(f"{MODEL_FILE}*") if p.is_file())


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 22), b""):
            digest.update(block)
    return digest.hexdigest()


def checksums(folder: Path) -> dict[str, str]:
    """sha256 of each model file, by name (what the manifest records)."""
    return {p.name: file_sha256(p) for p in model_files(folder)}


def check_checksums(folder: Path, manifest: dict[str, Any]) -> None:
    """CorruptExportError when a model file recorded in the manifest is missing or changed
    (a manifest without checksums, from an older export, is not checked)."""
    recorded = manifest.get("checksums")
    if not isinstance(recorded, dict):
        return
    for name, expected in recorded.items():
        path = folder / name
        if not path.is_file():
            raise CorruptExportError(
                f"{path} is missing; delete {folder} and export again with `promptxray export-onnx`"
            )
        if file_sha256(path) != expected:
            raise CorruptExportError(
                f"{path} does not match the checksum in {folder / MANIFEST} (a corrupt or "
                f"partly overwritten file); delete {folder} and export again with "
                "`promptxray export-onnx`"
            )


# --- temporary folders -------------------------------------------------------------------------
def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # somebody else's live process
        return True
    return True


def _owner(name: str) -> int | None:
    """The pid in a temporary folder's name `.export-<pid>-...` (None for other names)."""
    parts = name.split("-")
    return int(parts[1]) if len(parts) > 2 and parts[1].isdigit() else None


def clean_stale_exports(parent: Path, now: float | None = None) -> list[Path]:
    """Remove the temporary folders an interrupted export left in `parent`; return them.

    A `.export-<pid>-*` folder is stale when process <pid> is not running on this machine (it
    was killed mid-export), or, whatever the pid, when it is older than a day (the pid was
    reused). A `.export-*` folder whose name has no pid is stale after an hour. A folder of an
    export still running in a live process is left alone."""
    if not parent.is_dir():
        return []
    now = time.time() if now is None else now
    removed = []
    for folder in parent.glob(".export-*"):
        try:
            age = now - folder.stat().st_mtime
        except OSError:
            continue
        pid = _owner(folder.name)
        if pid is None:
            stale = age > STALE_UNKNOWN_S
        else:
            stale = age > STALE_ALIVE_S or (pid != os.getpid() and not _pid_alive(pid))
        if stale:
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder)
    return removed


def read_manifest(folder: Path) -> dict[str, Any]:
    """The manifest of an export folder, with clear errors for what is missing or broken."""
    path = folder / MANIFEST
    if not path.exists():
        raise ModelLoadError(f"{path} is missing: re-export with `promptxray export-onnx`")
    try:
        manifest = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ModelLoadError(f"{path} is not valid JSON ({exc}); re-export the model") from exc
    if not isinstance(manifest, dict) or "source_fingerprint" not in manifest:
        raise ModelLoadError(f"{path} is not a promptxray ONNX manifest; re-export the model")
    return manifest
