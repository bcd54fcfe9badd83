"""Keyed pseudonyms of user ids in prediction logs (HMAC-SHA256) and their key file."""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import secrets
import stat
from pathlib import Path

from tfrec import errors

log = logging.getLogger(__name__)

KEY_BYTES = 32
DIGEST_CHARS = 32  # 128 bits of the digest: collisions stay negligible for any user count
SCHEME = "hmac-sha256"


class Pseudonymiser:
    """Replaces a user id by a stable keyed hash, so logs can be joined but not read back.

    The same id and key always give the same pseudonym; without the key, ids cannot be
    recovered by hashing guesses. The key must not travel with the logs.

    Args:
        key: bytes. The HMAC key (at least 16 bytes).

    Example:
        >>> hashed = Pseudonymiser(b"k" * 32)
        >>> hashed(b"12345") == hashed(b"12345") and len(hashed(b"12345"))
        32
    """

    def __init__(self, key: bytes):
        if len(key) < 16:
            raise errors.ConfigError(
                f"pseudonym key: expected at least 16 bytes, received {len(key)}"
            )
        self.key = key
        # Names the key in every record, so readers can tell pseudonyms of different keys
        # apart (e.g. after the key was rotated) without learning anything about the key.
        self.fingerprint = hashlib.sha256(b"tfrec-pseudonym-key:" + key).hexdigest()[:12]

    @property
    def scheme(self) -> str:
        """`hmac-sha256:<key fingerprint>`, stored with each record."""
        return f"{SCHEME}:{self.fingerprint}"

    def __call__(self, value: bytes) -> bytes:
        """The pseudonym of one id: `DIGEST_CHARS` lowercase hex characters, as bytes."""
        digest = hmac.new(self.key, value, hashlib.sha256).hexdigest()
        return digest[:DIGEST_CHARS].encode("ascii")


def load_or_create_key(key_file: os.PathLike | str, log_dir: os.PathLike | str) -> bytes:
    """Reads the key (hex text), creating the file with a random key and mode 0600 if missing.

    Args:
        key_file: path. The key file.
        log_dir: path. The log folder; the key file must not lie inside it, or anyone given
            the logs could undo the pseudonyms by hashing candidate ids.

    Returns:
        bytes. The key.

    Raises:
        ConfigError: the key file lies in the log folder, or does not hold a hex key.
    """
    path = Path(key_file).expanduser()
    folder = Path(log_dir).expanduser().resolve()
    resolved = path.resolve()
    if resolved == folder or resolved.is_relative_to(folder):
        raise errors.ConfigError(
            f"`--log-key-file` {str(path)!r} lies inside `--log-dir` {str(folder)!r}: the key "
            "must be kept apart from the logs it protects; choose a path outside the log folder"
        )
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass  # another server created it meanwhile: read theirs
        else:
            with os.fdopen(fd, "w", encoding="ascii") as f:
                f.write(secrets.token_hex(KEY_BYTES) + "\n")
            log.info("created pseudonym key %s (mode 0600); keep it apart from the logs", path)
    return read_key(path)


def read_key(key_file: os.PathLike | str, flag: str = "--log-key-file") -> bytes:
    """Reads an existing key file (hex text), as written by `tfrec serve`.

    Args:
        key_file: path. The key file.
        flag: str. The command-line flag that named it, for error messages.

    Returns:
        bytes. The key.

    Raises:
        ConfigError: the file is missing or does not hold a hex key of at least 16 bytes.
    """
    path = Path(key_file).expanduser()
    if not path.is_file():
        raise errors.ConfigError(
            f"`{flag}` {str(path)!r}: expected the key file `tfrec serve --log-key-file` "
            "wrote, found no such file"
        )
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        log.warning("pseudonym key %s is readable by others (mode %o); use 0600", path, mode)
    text = path.read_text(encoding="ascii", errors="replace").strip()
    try:
        key = bytes.fromhex(text)
    except ValueError:
        key = b""
    if len(key) < 16:
        raise errors.ConfigError(
            f"`{flag}` {str(path)!r}: expected at least 32 hex characters (a key "
            f"written by `tfrec serve`), received {len(text)} characters that are not one"
        )
    return key
