"""Download PANNs' official checkpoints (Zenodo record 3987831) and verify them.

No torch here: a download is plain ``urllib`` plus ``hashlib``. Every file is
written to a hidden ``.<name>.part`` beside its place while its SHA-256 and MD5
are computed, checked, and only then renamed into place
(:func:`edge_sed.files.replaced_whole`); a mismatch or a failure removes it.

Checksums: Zenodo publishes an MD5 per file; no official SHA-256 list exists.
The values below come from public code quoting record 3987831 (MD5s), and one
SHA-256 a third party pinned for Cnn14_DecisionLevelMax. MobileNetV2 has none
known: pass ``expected_sha256`` (``--sha256``) to verify it.
"""

from __future__ import annotations

import difflib
import hashlib
import http.client
import logging
import re
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from edge_sed.errors import ConfigError, ModelError
from edge_sed.files import replaced_whole

__all__ = ["OfficialCheckpoint", "OFFICIAL_CHECKPOINTS", "ZENODO_FILES_URL", "TORCH_FILE_MAGIC", "fetch_checkpoint", "FetchResult"]

log = logging.getLogger(__name__)

#: Where PANNs' checkpoints live.
ZENODO_FILES_URL = "https://zenodo.org/records/3987831/files"
#: How files that torch.save wrote begin: a zip archive (torch >= 1.6), or a pickle (protocol 2+, older torch).
TORCH_FILE_MAGIC = (b"PK\x03\x04", b"\x80")
_CHUNK_BYTES = 1 << 20
_TIMEOUT_S = 60.0


@dataclass(frozen=True, slots=True)
class OfficialCheckpoint:
    """One official file: its name on Zenodo and the checksums known for it."""

    file_name: str
    md5: str | None = None
    sha256: str | None = None


#: Registry name -> official checkpoint.
OFFICIAL_CHECKPOINTS: dict[str, OfficialCheckpoint] = {
    "cnn14": OfficialCheckpoint("Cnn14_mAP=0.431.pth", md5="541141fa2ee191a88f24a3219fff024e"),
    "cnn14_16k": OfficialCheckpoint("Cnn14_16k_mAP=0.438.pth", md5="362fc5ff18f1d6ad2f6d464b45893f2c"),
    "cnn14_decision_level_max": OfficialCheckpoint(
        "Cnn14_DecisionLevelMax_mAP=0.385.pth",
        sha256="dd3b4043a87d4ec13df8082c0fcfee3fb5084151808e47e060987a95eabdd142",
    ),
    "cnn10": OfficialCheckpoint("Cnn10_mAP=0.380.pth", md5="bfb1f1f9968938fa8ef4012b8471f5f6"),
    "cnn6": OfficialCheckpoint("Cnn6_mAP=0.343.pth", md5="e25e26b84585b14c7754c91e48efc9be"),
    "mobilenet_v1": OfficialCheckpoint("MobileNetV1_mAP=0.389.pth", md5="a419303e1c88aa1b9d2ac3811563d371"),
    "mobilenet_v2": OfficialCheckpoint("MobileNetV2_mAP=0.383.pth"),
}


@dataclass(frozen=True, slots=True)
class FetchResult:
    """The file written, its SHA-256, and which checksums were verified."""

    path: Path
    sha256: str
    verified: tuple[str, ...]


def _official(name: str) -> OfficialCheckpoint:
    if name in OFFICIAL_CHECKPOINTS:
        return OFFICIAL_CHECKPOINTS[name]
    close = difflib.get_close_matches(name, OFFICIAL_CHECKPOINTS, n=1)
    hint = f" (did you mean {close[0]}?)" if close else ""
    raise ModelError(f"no official checkpoint for {name!r}; fetchable: {', '.join(OFFICIAL_CHECKPOINTS)}{hint}")


def fetch_checkpoint(
    name: str,
    output_dir: str | Path = ".",
    *,
    base_url: str = ZENODO_FILES_URL,
    expected_sha256: str | None = None,
) -> FetchResult:
    """Download the official checkpoint of registry model *name* into *output_dir*.

    Raises :class:`ModelError` for an unknown name, a failed download or a
    checksum mismatch (nothing is left behind then). *expected_sha256*
    replaces the built-in SHA-256 (if any); the built-in MD5 is checked as well.
    """
    official = _official(name)
    if expected_sha256 is not None and not re.fullmatch(r"[0-9a-fA-F]{64}", expected_sha256):
        raise ConfigError(f"--sha256 must be 64 hexadecimal digits, got {expected_sha256!r}")
    expected = {"sha256": (expected_sha256 or official.sha256 or "").lower() or None, "md5": official.md5}
    target = Path(output_dir) / official.file_name
    if target.is_dir():
        raise ModelError(f"{str(target)!r} is a directory; move it away or pick another --output-dir")
    url = f"{base_url.rstrip('/')}/{urllib.parse.quote(official.file_name)}"
    if urllib.parse.urlsplit(url).scheme in ("http", "https"):
        url += "?download=1"  # Zenodo's direct download
    log.info("fetching %s -> %s", url, target)
    try:
        with replaced_whole(target) as (part,):
            got = _download(url, part)
            for kind, want in expected.items():
                if want and got[kind] != want:
                    raise ModelError(f"{official.file_name} from {url!r} has {kind} {got[kind]}, expected {want}; file removed")
    except OSError as exc:  # writing it: a full disk, a folder without write permission
        raise OSError(exc.errno, exc.strerror, str(target)) from None
    verified = tuple(kind for kind, want in expected.items() if want)
    if not verified:
        log.warning("%s: no checksum known; sha256 %s (compare with Zenodo's md5 %s)", target, got["sha256"], got["md5"])
    return FetchResult(path=target, sha256=got["sha256"], verified=verified)


def _download(url: str, part: Path) -> dict[str, str]:
    """Write *url*'s body to *part*; its SHA-256 and MD5. A failure to fetch (network, HTTP
    status, a body shorter than announced, one that is no torch file) is a :class:`ModelError`;
    one to write (a full disk, a missing permission) the :class:`OSError` itself."""
    digests = {"sha256": hashlib.sha256(), "md5": hashlib.md5(usedforsecurity=False)}
    received = 0

    def failed(why: object) -> ModelError:
        return ModelError(f"cannot download {url!r}: {why}; check the network or pass --base-url")

    try:
        response = urllib.request.urlopen(url, timeout=_TIMEOUT_S)
    except (urllib.error.URLError, OSError, ValueError) as exc:
        why = f"HTTP {exc.code} {exc.reason}" if isinstance(exc, urllib.error.HTTPError) else getattr(exc, "reason", exc)
        raise failed(why) from None
    with response:
        announced = response.headers.get("Content-Length")
        part.parent.mkdir(parents=True, exist_ok=True)
        with part.open("wb") as out:
            while True:
                try:
                    chunk = response.read(_CHUNK_BYTES)
                except (OSError, http.client.HTTPException) as exc:  # the connection broke off
                    raise failed(exc) from None
                if not chunk:
                    break
                received += len(chunk)
                out.write(chunk)
                for digest in digests.values():
                    digest.update(chunk)
    if announced is not None and announced.isdigit() and received != int(announced):
        raise failed(f"the transfer ended after {received} of {announced} bytes")
    with part.open("rb") as written:
        head = written.read(16)
    if not head.startswith(TORCH_FILE_MAGIC):
        raise failed(f"what came is no PyTorch checkpoint (it begins {head!r})")
    return {kind: digest.hexdigest() for kind, digest in digests.items()}
