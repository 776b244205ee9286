"""An older version of a prompt file: another file, or the file as a git revision holds it
(`git show REV:path`, the path relative to the file's repository). Used by `promptxray check
--since`; every failure is a `VersionError` that says which of file, repository, revision
and path was missing."""

from __future__ import annotations

import subprocess
from pathlib import Path

from promptxray.explainers.errors import InvalidRequestError
from promptxray.explainers.prompt.document import decode_prompt_bytes, read_prompt_file


class VersionError(InvalidRequestError):
    """The older version cannot be read: not a file, not in git, no such revision or path."""


def read_version(since: str, path: str) -> tuple[str, str]:
    """(text, label) of the version of `path` that `since` names: an existing file is read as
    is (label: its name); anything else is a git revision of the repository that holds `path`
    (label: `REV:relative/path`)."""
    if Path(since).is_file():
        return read_prompt_file(since), since
    file = Path(path).resolve()
    try:
        top = Path(_git(file.parent, "rev-parse", "--show-toplevel").decode().strip())
    except VersionError:
        raise VersionError(
            f"--since {since}: no file {since!r}, and {path} is not in a git repository"
        ) from None
    rel = file.relative_to(top.resolve()).as_posix()
    try:
        _git(top, "rev-parse", "--verify", "--quiet", f"{since}^{{commit}}")
    except VersionError:
        why = f"--since {since}: no file and no git revision named {since!r}"
        raise VersionError(why) from None
    try:
        data = _git(top, "show", f"{since}:{rel}")
    except VersionError:
        raise VersionError(f"--since {since}: {rel} is not in revision {since}") from None
    return decode_prompt_bytes(data, f"{since}:{rel}"), f"{since}:{rel}"


def _git(folder: Path, *args: str) -> bytes:
    try:
        done = subprocess.run(
            ["git", "-C", str(folder), *args], capture_output=True, check=False, timeout=30
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise VersionError(f"cannot run git: {exc}") from None
    if done.returncode != 0:
        raise VersionError(done.stderr.decode(errors="replace").strip() or "git failed")
    return done.stdout
