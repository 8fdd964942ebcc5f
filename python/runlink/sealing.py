"""Secrets sealed at rest with the key of a runlink home (Fernet, `$RUNLINK_HOME/secret.key`, mode 0600).

Why agent-level: the tracker seals the Airflow credentials it stores, and a monitor that shares the tracker's
home unseals them in its own process; neither side imports the other. `cryptography` is imported on use (the
tracker's extra installs it; so does Airflow).
"""

from __future__ import annotations

from pathlib import Path

from runlink.secret_files import create_once


class SealError(ValueError):
    """A sealed secret cannot be opened here (no key file, or another key), with the field it concerns."""

    def __init__(self, message: str, field: str | None = None):
        super().__init__(message)
        self.field = field


def key_path(home: Path) -> Path:
    return home / "secret.key"


def load_key(home: Path, create: bool = True) -> bytes | None:
    """The Fernet key of this home; created (0600 from the start) when missing and `create`."""
    from cryptography.fernet import Fernet

    path = key_path(home)
    try:
        return path.read_bytes().strip()
    except FileNotFoundError:
        if not create:
            return None
    return create_once(path, Fernet.generate_key()).strip()


def seal(home: Path, secret: str) -> str:
    """`secret` encrypted with the key of `home` (the key is made on first use)."""
    from cryptography.fernet import Fernet

    return Fernet(load_key(home)).encrypt(secret.encode("utf-8")).decode("ascii")


def unseal(home: Path, sealed: str) -> str:
    """Decrypt with the key of `home` (the monitor's side, when it shares the tracker's home)."""
    from cryptography.fernet import Fernet, InvalidToken

    key = load_key(home, create=False)
    if key is None:
        raise SealError(f"no {key_path(home)}: cannot decrypt the stored credentials here "
                        "(register them as a reference such as env:VAR instead)", "credentials")
    try:
        return Fernet(key).decrypt(sealed.encode("ascii")).decode("utf-8")
    except InvalidToken:
        raise SealError(f"{key_path(home)} does not decrypt the stored credentials (another key?)",
                        "credentials") from None
