"""`edge-sed models fetch` against a real HTTP server on loopback."""

from __future__ import annotations

import functools
import hashlib
import http.server
import threading
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from edge_sed.cli import app
from edge_sed.models.fetch import OFFICIAL_CHECKPOINTS
from edge_sed.models.registry import MODELS, build_model

runner = CliRunner()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the base class's name
        pass


class _MirrorHandler(_QuietHandler):
    """Files as they are; under ``/cut/`` a response that promises 5 MB and breaks off after 100 kB."""

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        if not self.path.startswith("/cut/"):
            return super().do_GET()
        self.send_response(200)
        self.send_header("Content-Length", str(5_000_000))
        self.end_headers()
        self.wfile.write(b"PK\x03\x04" + bytes(100_000))
        self.close_connection = True


@pytest.fixture(scope="module")
def mirror(tmp_path_factory) -> tuple[str, Path]:
    """A local 'Zenodo' serving an official-format MobileNetV1 checkpoint under its official name
    (and, under ``/html/``, a web page under that name)."""
    root = tmp_path_factory.mktemp("zenodo")
    served = root / OFFICIAL_CHECKPOINTS["mobilenet_v1"].file_name
    torch.save({"model": build_model("mobilenet_v1", num_classes=527).state_dict(), "iteration": 0}, served)
    (root / "html").mkdir()
    (root / "html" / served.name).write_text("<!DOCTYPE html><html><body>Sign in to download</body></html>\n")
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_MirrorHandler, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", served
    server.shutdown()
    thread.join()


def test_every_official_model_is_fetchable() -> None:
    assert set(OFFICIAL_CHECKPOINTS) == {spec.name for spec in MODELS.values() if spec.panns_class}


def test_fetch_verifies_and_writes(mirror, tmp_path: Path) -> None:
    url, served = mirror
    digest = hashlib.sha256(served.read_bytes()).hexdigest()
    result = runner.invoke(app, ["models", "fetch", "mobilenet_v1", "-o", str(tmp_path), "--base-url", url, "--sha256", digest])
    # the served file is not the real one, so Zenodo's md5 refuses it ...
    assert result.exit_code == 1
    assert result.output.startswith("error: MobileNetV1_mAP=0.389.pth from ") and "has md5 " in result.output
    assert "expected a419303e1c88aa1b9d2ac3811563d371; file removed" in result.output
    assert list(tmp_path.iterdir()) == []


def test_fetch_without_known_md5_checks_the_given_sha256(mirror, tmp_path: Path, monkeypatch) -> None:
    url, served = mirror
    from edge_sed.models import fetch as fetch_module

    monkeypatch.setitem(fetch_module.OFFICIAL_CHECKPOINTS, "mobilenet_v1", fetch_module.OfficialCheckpoint(served.name))
    digest = hashlib.sha256(served.read_bytes()).hexdigest()
    result = runner.invoke(app, ["models", "fetch", "mobilenet_v1", "-o", str(tmp_path), "--base-url", url, "--sha256", digest])
    assert result.exit_code == 0, result.output
    written = tmp_path / served.name
    assert result.output.strip() == f"{written}  sha256 {digest}  (verified: sha256)"
    assert written.read_bytes() == served.read_bytes()
    wrong = runner.invoke(app, ["models", "fetch", "mobilenet_v1", "-o", str(tmp_path / "b"), "--base-url", url, "--sha256", "0" * 64])
    assert wrong.exit_code == 1 and f"has sha256 {digest}, expected {'0' * 64}; file removed" in wrong.output
    assert list((tmp_path / "b").iterdir()) == []


def test_fetch_errors_are_one_line(mirror, tmp_path: Path) -> None:
    url, _ = mirror
    unknown = runner.invoke(app, ["models", "fetch", "mobilenet_v3", "--base-url", url])
    assert unknown.exit_code == 1
    assert unknown.output.strip() == (
        "error: no official checkpoint for 'mobilenet_v3'; fetchable: cnn14, cnn14_16k, cnn14_decision_level_max, "
        "cnn10, cnn6, mobilenet_v1, mobilenet_v2 (did you mean mobilenet_v2?)"
    )
    missing = runner.invoke(app, ["models", "fetch", "cnn6", "-o", str(tmp_path), "--base-url", url])
    assert missing.exit_code == 1 and "Cnn6_mAP%3D0.343.pth?download=1': HTTP 404 File not found" in missing.output
    assert len(missing.output.strip().splitlines()) == 1 and list(tmp_path.iterdir()) == []
    bad_digest = runner.invoke(app, ["models", "fetch", "cnn6", "-o", str(tmp_path), "--base-url", url, "--sha256", "xyz"])
    assert bad_digest.exit_code == 1 and bad_digest.output.strip() == "error: --sha256 must be 64 hexadecimal digits, got 'xyz'"



def _without_checksums(monkeypatch, name: str) -> None:
    """The served file is not the official one: let it through as MobileNetV2's is (no checksum known)."""
    from edge_sed.models import fetch as fetch_module

    monkeypatch.setitem(fetch_module.OFFICIAL_CHECKPOINTS, "mobilenet_v1", fetch_module.OfficialCheckpoint(name))


def test_a_download_that_breaks_off_or_is_no_checkpoint_leaves_the_previous_file(mirror, tmp_path: Path, monkeypatch) -> None:
    url, served = mirror
    _without_checksums(monkeypatch, served.name)
    previous = tmp_path / served.name
    previous.write_bytes(b"PK\x03\x04 the checkpoint fetched before")
    cut = runner.invoke(app, ["models", "fetch", "mobilenet_v1", "-o", str(tmp_path), "--base-url", f"{url}/cut"])
    assert cut.exit_code == 1 and cut.output.startswith(f"error: cannot download '{url}/cut/MobileNetV1_mAP%3D0.389.pth?download=1': ")
    assert "100004" in cut.output and cut.output.rstrip().endswith("; check the network or pass --base-url")
    page = runner.invoke(app, ["models", "fetch", "mobilenet_v1", "-o", str(tmp_path), "--base-url", f"{url}/html"])
    assert page.exit_code == 1 and "what came is no PyTorch checkpoint (it begins b'<!DOCTYPE html><')" in page.output
    assert sorted(tmp_path.iterdir()) == [previous] and previous.read_bytes() == b"PK\x03\x04 the checkpoint fetched before"


def test_a_file_url_mirror_is_read_as_it_is(mirror, tmp_path: Path, monkeypatch) -> None:
    """No Zenodo ``?download=1`` on a ``file://`` mirror (a folder of checkpoints copied by hand)."""
    _, served = mirror
    _without_checksums(monkeypatch, served.name)
    result = runner.invoke(app, ["models", "fetch", "mobilenet_v1", "-o", str(tmp_path), "--base-url", served.parent.as_uri()])
    assert result.exit_code == 0, result.output
    assert (tmp_path / served.name).read_bytes() == served.read_bytes()


def test_local_problems_are_not_blamed_on_the_network(mirror, tmp_path: Path, monkeypatch) -> None:
    url, served = mirror
    _without_checksums(monkeypatch, served.name)
    (tmp_path / served.name).mkdir()
    taken = runner.invoke(app, ["models", "fetch", "mobilenet_v1", "-o", str(tmp_path), "--base-url", url])
    assert taken.exit_code == 1
    assert taken.output.strip() == f"error: {str(tmp_path / served.name)!r} is a directory; move it away or pick another --output-dir"
    offline = runner.invoke(app, ["models", "fetch", "mobilenet_v1", "-o", str(tmp_path / "new"), "--base-url", "http://127.0.0.1:9"])
    assert offline.exit_code == 1 and not (tmp_path / "new").exists()  # nothing made for a download that never began
