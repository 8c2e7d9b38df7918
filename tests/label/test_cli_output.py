"""What ``python -m satgate_monai.label`` shows on the terminal and what it writes to its log file (data-free).

The policy of every satgate-monai command (:mod:`data_prep.console`): a short summary on the terminal, the full log in a
file, ``-v`` streams that log too. For ``serve`` the log also takes the server's own output; a stand-in "MONAI Label
python" (a shell script that prints like a busy server) shows where that output goes, without MONAI Label.
"""

from __future__ import annotations

import stat
import subprocess
import sys
from pathlib import Path

from satgate_monai.label import cli
from tests.label.client import project_env
from tests.orthanc import free_port

SERVER_LINES = 40  # what the stand-in server prints: more than a summary may hold


def _run(*argv: str) -> tuple[list[str], str]:
    """Run the label CLI; return (terminal lines, stdout and stderr together)."""
    proc = subprocess.run([sys.executable, "-m", "satgate_monai.label", *argv], capture_output=True, text=True,
                          env=project_env(), timeout=120)
    text = proc.stdout + proc.stderr
    assert proc.returncode == 0, text
    return text.strip().splitlines(), text


def _stand_in_server(tmp_path: Path) -> Path:
    """An executable that, run in place of MONAI Label's python, prints like a serving and training server."""
    script = tmp_path / "fake-python"
    script.write_text(
        "#!/bin/sh\n"
        f'i=0; while [ $i -lt {SERVER_LINES} ]; do echo "INFO: 127.0.0.1 - \\"GET /info/ HTTP/1.1\\" 200 OK $i"; '
        "i=$((i+1)); done\n"
        'echo "server stderr: epoch 1/1 done" >&2\n'
    )
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return script


def _serve_argv(tmp_path: Path) -> list[str]:
    (tmp_path / "studies").mkdir(exist_ok=True)
    (tmp_path / "b" / "one_sat" / "configs").mkdir(parents=True, exist_ok=True)
    return ["serve", "--studies", str(tmp_path / "studies"), "--models", str(tmp_path / "b" / "one_sat"),
            "--python", str(_stand_in_server(tmp_path)), "--skip-check", "--app-dir", str(tmp_path / "app"),
            "--port", str(free_port())]


def test_serve_shows_a_summary_and_logs_the_servers_output(tmp_path):
    log = tmp_path / "app" / "logs" / "serve.log"
    lines, text = _run(*_serve_argv(tmp_path))
    assert len(lines) <= 10, text
    assert any(line.split() == ["URL", line.split()[-1]] and line.split()[-1].startswith("http://127.0.0.1:")
               for line in lines), text
    assert f"log     {log}" in text and "-v streams it here" in text
    assert "GET /info/" not in text and "server stderr" not in text, "the server's output flooded the terminal"
    logged = log.read_text()
    assert f"200 OK {SERVER_LINES - 1}" in logged and "server stderr: epoch 1/1 done" in logged
    assert "server command:" in logged  # the command's own detail, before the server's

    lines, text = _run(*_serve_argv(tmp_path), "-v", "--log-dir", str(tmp_path / "logs"))
    assert f"200 OK {SERVER_LINES - 1}" in text and "server stderr: epoch 1/1 done" in text
    assert "server command:" in text
    streamed = (tmp_path / "logs" / "serve.log").read_text()
    assert f"200 OK {SERVER_LINES - 1}" in streamed, "-v streams the log, it still writes it (here to --log-dir)"
    assert log.read_text().count(f"200 OK {SERVER_LINES - 1}") == 1


def test_studies_shows_one_line_and_logs_every_file(tmp_path, capfd):
    prep, out = tmp_path / "prep", tmp_path / "studies"
    (prep / "images").mkdir(parents=True)
    for i in range(12):
        (prep / "images" / f"case_{i:02d}.nii.gz").write_bytes(b"image %d" % i)
    assert cli.main(["studies", "--from", str(prep), "--out", str(out)]) == 0
    text = "".join(capfd.readouterr())
    assert text.strip().splitlines() == [
        f"{out}: 12 image(s) and 0 label(s) copied, 12 studies there (log: {out / 'studies.log'})"], text
    logged = (out / "studies.log").read_text()
    assert all(f"copied {prep / 'images' / f'case_{i:02d}.nii.gz'}" in logged for i in range(12)), logged

    assert cli.main(["studies", "--from", str(prep), "--out", str(out), "-v"]) == 0
    text = "".join(capfd.readouterr())
    assert sum("kept " in line for line in text.splitlines()) == 12, text
    assert f"{out}: 0 image(s) and 0 label(s) copied, 12 studies there" in text
