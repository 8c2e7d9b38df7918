"""``python -m satgate_monai.label``: start a MONAI Label server on satgate-monai's bundles. Standard library only.

    python -m satgate_monai.label serve --studies DIR [--port 8000] [--host 127.0.0.1] [--models a,b,c]
    python -m satgate_monai.label serve --studies http://127.0.0.1:8042/dicom-web [--modality MR]  # a PACS
    python -m satgate_monai.label env          # print (building once if needed) the MONAI Label environment's python
    python -m satgate_monai.label studies --from PREP --out STUDIES [--labels]   # a data_prep output as studies

Output (:mod:`data_prep.console`, as every satgate-monai command): a short summary on the terminal, the full log in a
file, ``-v`` streams that log too. ``serve`` logs to ``<app folder>/logs/serve.log`` (beside MONAI Label's own
``app.log``; ``--log-dir`` elsewhere), and the server's own output (uvicorn's access lines, training epochs) goes there
as well; ``studies`` logs to ``STUDIES/studies.log``; ``env`` to ``monailabel-env.log`` in the cache folder.

``serve`` finds the MONAI Label environment (see :mod:`satgate_monai.label.environment`), checks every bundle in it
(network importable, weights fit, ids MONAI Label needs), writes an app folder whose ``model/<name>`` entries link to
the bundle folders, prints the URL for 3D Slicer and replaces itself with the server process (same PID), so stopping
that PID stops the server.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import socket
import subprocess
import sys
from pathlib import Path

from data_prep.atomic import atomic_copy, atomic_write_text
from satgate_monai.label.environment import cache_dir, find_monailabel_python
from satgate_monai.resources import bundles_dir

__all__ = [
    "DEFAULT_BUNDLES_DIR",
    "build_parser",
    "log_path",
    "main",
    "bundle_modalities",
    "is_dicomweb",
    "make_studies_folder",
    "prepare_app_dir",
    "resolve_bundles",
    "server_command",
]

PACKAGE_DIR = Path(__file__).resolve().parents[1]  # .../satgate_monai
DEFAULT_BUNDLES_DIR = bundles_dir()
DATA_PREP_DIR = PACKAGE_DIR.parent / "data_prep"  # installed beside satgate_monai (same distribution)
APP_MAIN = '''"""MONAI Label app folder written by `python -m satgate_monai.label serve` (rewritten at every start)."""

from satgate_monai.label.app.main import SATGateLabelApp  # noqa: F401 - MONAI Label looks for MONAILabelApp here
'''


logger = logging.getLogger(__name__)
STUDY_EXTS = (".nii.gz", ".nii", ".nrrd", ".png", ".jpg", ".jpeg")  # the images ``studies`` copies
LOG_NAMES = {"serve": "serve.log", "studies": "studies.log", "env": "monailabel-env.log"}


class UsageError(Exception):
    """A user error: printed as ``error: ...`` with exit status 2."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m satgate_monai.label", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    verbose = argparse.ArgumentParser(add_help=False)
    verbose.add_argument("-v", "--verbose", action="store_true",
                         help="stream the full log (with serve: the server's own output too) to the terminal as well")
    serve = sub.add_parser("serve", parents=[verbose], help="start the MONAI Label server on the project's bundles")
    serve.add_argument(
        "--studies",
        required=True,
        help="folder of images to annotate (NIfTI, NRRD, PNG, JPEG), or a PACS's DICOMweb URL "
        "(http://HOST:PORT/dicom-web for Orthanc)",
    )
    serve.add_argument(
        "--modality",
        default="",
        help="with a DICOMweb --studies: comma-separated DICOM modalities of the series to list "
        "(default: the served bundles' modalities, e.g. MR for the prostate bundle)",
    )
    serve.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this computer only)")
    serve.add_argument(
        "--models",
        default="",
        help="comma-separated bundle names (folders of --bundles-dir) or bundle folders; default: every bundle there",
    )
    serve.add_argument("--bundles-dir", default=str(DEFAULT_BUNDLES_DIR), help="where bundle names are looked up")
    serve.add_argument("--python", default=None, help="the MONAI Label environment's python (default: found/built)")
    serve.add_argument("--app-dir", default=None, help="app folder to write (default: in the satgate-monai cache)")
    serve.add_argument("--log-dir", default=None,
                       help="folder of serve.log, the full log with the server's output (default: APP_DIR/logs, "
                       "beside MONAI Label's app.log)")
    serve.add_argument(
        "--conf", nargs=2, action="append", default=[], metavar=("KEY", "VALUE"), help="extra MONAI Label --conf"
    )
    serve.add_argument("--skip-check", action="store_true", help="do not check the bundles before starting")
    serve.add_argument("--dry-run", action="store_true", help="check and print the server command, do not start")
    studies = sub.add_parser("studies", parents=[verbose],
                             help="copy a data_prep output's images (and labels) into a studies folder")
    studies.add_argument("--from", dest="prep", required=True, help="a data_prep output folder (images/, labels/)")
    studies.add_argument("--out", required=True, help="the studies folder to fill (created if missing)")
    studies.add_argument("--labels", action="store_true", help="also copy labels to labels/final (to retrain)")
    env = sub.add_parser("env", parents=[verbose],
                         help="print the MONAI Label environment's python (built once if missing)")
    env.add_argument("--python", default=None, help="use this python instead of looking it up")
    return parser


def resolve_bundles(models: str, bundles_dir: str | os.PathLike) -> dict[str, Path]:
    """Map ``--models`` to bundle folders: names in ``bundles_dir`` or paths; empty means every bundle there.

    Raises:
        UsageError: a name that is neither a bundle folder nor a path, duplicate names, or no bundle at all.
    """
    root = Path(bundles_dir)
    items = [m.strip() for m in models.split(",") if m.strip()]
    if not items:
        if not root.is_dir():
            raise UsageError(f"--bundles-dir {root} does not exist: pass --models with bundle folders")
        items = sorted(p.name for p in root.iterdir() if (p / "configs").is_dir())
        if not items:
            raise UsageError(f"no bundle (a folder with configs/) in {root}")
    bundles: dict[str, Path] = {}
    for item in items:
        path = Path(item) if os.sep in item or Path(item).is_absolute() else root / item
        if not path.is_dir():
            raise UsageError(f"bundle {item!r} not found: {path} is not a folder")
        name = path.resolve().name
        if name in bundles:
            raise UsageError(f"two bundles named {name!r}: {bundles[name]} and {path.resolve()}")
        bundles[name] = path.resolve()
    return bundles


def _copy_new(src: Path, dst: Path) -> bool:
    """Copy ``src`` to ``dst`` atomically; False if an identical file is there; UsageError if a different one is."""
    if dst.exists():
        if dst.read_bytes() == src.read_bytes():
            logger.info("kept %s (identical to %s)", dst, src)
            return False
        raise UsageError(f"{dst} exists and differs from {src}: not overwritten")
    atomic_copy(src, dst)
    logger.info("copied %s -> %s", src, dst)
    return True


def make_studies_folder(prep: Path, out: Path, labels: bool = False) -> tuple[int, int]:
    """Copy ``prep/images/*`` into ``out`` (MONAI Label's flat studies layout) and, with ``labels``,
    ``prep/labels/*`` into ``out/labels/final`` (the labels MONAI Label trains on). Existing identical files are kept.

    Returns:
        (images copied, labels copied).

    Raises:
        UsageError: ``prep`` has no ``images/`` with images, or a different file already has the same name.
    """
    images = sorted(p for p in (prep / "images").glob("*") if p.name.lower().endswith(STUDY_EXTS))
    if not images:
        raise UsageError(f"--from {prep}: no images in {prep / 'images'} (make it with `python -m data_prep import`)")
    out.mkdir(parents=True, exist_ok=True)
    n_images = sum(_copy_new(p, out / p.name) for p in images)
    n_labels = 0
    if labels:
        final = out / "labels" / "final"
        final.mkdir(parents=True, exist_ok=True)
        for p in images:
            label = prep / "labels" / p.name
            if label.is_file():
                n_labels += _copy_new(label, final / p.name)
    return n_images, n_labels


def check_bundles(python: Path, bundles: dict[str, Path], env: dict[str, str]) -> list[dict]:
    """Run :mod:`satgate_monai.label.precheck` in the MONAI Label environment; return its reports."""
    cmd = [str(python), "-m", "satgate_monai.label.precheck", *map(str, bundles.values())]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    lines = proc.stdout.strip().splitlines()
    if proc.returncode != 0 or not lines:
        raise UsageError(
            f"the bundle check failed in the MONAI Label environment ({python}):\n{proc.stderr.strip()[-3000:]}"
        )
    return json.loads(lines[-1])


def is_dicomweb(studies: str) -> bool:
    """Whether ``--studies`` names a DICOMweb service (``http://`` or ``https://``) rather than a folder."""
    return studies.lower().startswith(("http://", "https://"))


def bundle_modalities(bundles: dict[str, Path]) -> list[str]:
    """DICOM modality codes (``CT``, ``MR``...) of the bundles' image inputs (``metadata.json``), in order."""
    found: list[str] = []
    for path in bundles.values():
        try:
            meta = json.loads((path / "configs" / "metadata.json").read_text())
            image = next(iter(meta["network_data_format"]["inputs"].values()))
        except (OSError, ValueError, KeyError, StopIteration):
            continue
        modality = str(image.get("modality", "")).strip()
        if modality.isalpha() and modality.isupper() and len(modality) <= 4 and modality not in found:
            found.append(modality)
    return found


def prepare_app_dir(app_dir: Path, bundles: dict[str, Path]) -> None:
    """Write the app folder: ``main.py``, ``model/<name>`` links to the bundles, ``python/`` links to the packages.

    Links left by an earlier start are replaced; a real file or folder in ``model/`` is never touched.

    Raises:
        UsageError: ``model/<name>`` exists and is not a link.
    """
    (app_dir / "model").mkdir(parents=True, exist_ok=True)
    (app_dir / "python").mkdir(exist_ok=True)
    atomic_write_text(app_dir / "main.py", APP_MAIN)
    for entry in (app_dir / "model").iterdir():
        if entry.is_symlink():
            entry.unlink()
    for name, path in bundles.items():
        link = app_dir / "model" / name
        if link.exists():
            raise UsageError(f"{link} exists and is not a link made by this command: remove it or use --app-dir")
        link.symlink_to(path, target_is_directory=True)
    for package in (PACKAGE_DIR, DATA_PREP_DIR):  # data_prep: the readers that check uploads
        pkg_link = app_dir / "python" / package.name
        if pkg_link.is_symlink() or pkg_link.exists():
            pkg_link.unlink()
        if package.is_dir():
            pkg_link.symlink_to(package, target_is_directory=True)


def server_env(app_dir: Path) -> dict[str, str]:
    """The server's environment: satgate_monai importable, no model-zoo lookup, no experiment tracking."""
    env = dict(os.environ)
    paths = [str(app_dir / "python")] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
    env["PYTHONPATH"] = os.pathsep.join(paths)
    env["BUNDLE_DOWNLOAD_SRC"] = "github"
    env["MONAI_ZOO_SOURCE"] = "github"
    env["MONAI_LABEL_TRACKING_ENABLED"] = "false"
    return env


def server_command(
    python: Path, app_dir: Path, studies: Path | str, host: str, port: int, models: list[str], conf: list[list[str]]
) -> list[str]:
    """The ``monailabel.main start_server`` command line (run with the environment's own interpreter, through
    :mod:`satgate_monai.label.server`: a private temporary folder, removed on every exit)."""
    cmd = [str(python), "-m", "satgate_monai.label.server", "start_server"]
    cmd += ["--app", str(app_dir), "--studies", str(studies)]
    cmd += ["--host", host, "--port", str(port), "--conf", "models", ",".join(models)]
    cmd += ["--conf", "zoo_source", "github", "--conf", "sam2", "false", "--conf", "preload", "false"]
    for key, value in conf:
        cmd += ["--conf", key, value]
    return cmd


def _port_free(host: str, port: int) -> bool:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def app_dir_of(args: argparse.Namespace) -> Path:
    """The app folder ``serve`` writes: ``--app-dir``, else ``<cache>/label-app/<host>-<port>``."""
    return Path(args.app_dir).resolve() if args.app_dir else cache_dir() / "label-app" / f"{args.host}-{args.port}"


def log_path(args: argparse.Namespace) -> Path:
    """Where the command's full log goes: ``serve``: ``--log-dir`` or ``<app folder>/logs`` (MONAI Label writes its
    ``app.log`` there too); ``studies``: its ``--out`` folder; ``env``: the cache folder."""
    name = LOG_NAMES[args.command]
    if args.command == "serve":
        return (Path(args.log_dir).resolve() if args.log_dir else app_dir_of(args) / "logs") / name
    if args.command == "studies":
        return Path(args.out).resolve() / name
    return cache_dir() / name


def _exec_logged(cmd: list[str], env: dict[str, str], log: Path, verbose: bool) -> None:
    """Replace this process with ``cmd`` (same PID), its stdout and stderr appended to ``log``; with ``verbose``
    through ``tee`` (its own session, so Ctrl+C reaches the server only; it ends when the server closes the pipe), so
    the terminal shows them too."""
    from data_prep.console import reset_output

    sys.stdout.flush()
    sys.stderr.flush()
    reset_output()
    log.parent.mkdir(parents=True, exist_ok=True)
    if verbose:
        tee = subprocess.Popen(["tee", "-a", str(log)], stdin=subprocess.PIPE, start_new_session=True)
        fd = tee.stdin.fileno()
    else:
        fd = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.execve(cmd[0], cmd, env)


def serve(args: argparse.Namespace) -> int:
    if is_dicomweb(args.studies):
        studies: Path | str = args.studies.rstrip("/")
    else:
        studies = Path(args.studies).resolve()
        if not studies.is_dir():
            raise UsageError(f"--studies {args.studies}: not a folder (make it and put the images to annotate there)")
    if not 0 < args.port < 65536:
        raise UsageError(f"--port {args.port}: not a port number")
    bundles = resolve_bundles(args.models, args.bundles_dir)
    try:
        python = find_monailabel_python(args.python)
    except FileNotFoundError as e:
        raise UsageError(str(e)) from e
    app_dir = app_dir_of(args)
    prepare_app_dir(app_dir, bundles)
    log = log_path(args)
    log.parent.mkdir(parents=True, exist_ok=True)
    logger.info("serve %s with %s; MONAI Label python %s; app folder %s", studies, ", ".join(bundles), python, app_dir)
    env = server_env(app_dir)

    reports = [] if args.skip_check else check_bundles(python, bundles, env)
    failed = [r for r in reports if r["errors"]]
    for r in reports:
        logger.info("bundle check: %s", json.dumps(r))
        for w in r["warnings"]:
            logger.warning("bundle %r: %s", r["name"], w)
    if failed:
        msgs = [f"bundle {r['name']!r} ({r['path']}): {e}" for r in failed for e in r["errors"]]
        raise UsageError("cannot serve:\n  " + "\n  ".join(msgs))
    if not _port_free(args.host, args.port):
        raise UsageError(f"port {args.port} on {args.host} is in use: pick another with --port")

    conf = list(args.conf)
    if is_dicomweb(str(studies)):
        modalities = [m.strip().upper() for m in args.modality.split(",") if m.strip()] or bundle_modalities(bundles)
        conf = [["modalities", ",".join(modalities)], ["dicomweb_cache", str(app_dir / "dicomweb-cache")], *conf]
    cmd = server_command(python, app_dir, studies, args.host, args.port, list(bundles), conf)
    shown_host = "127.0.0.1" if args.host in ("0.0.0.0", "::") else args.host
    url = f"http://{shown_host}:{args.port}"
    print("satgate-monai MONAI Label server")
    for r in reports:
        labels = ", ".join(r.get("labels") or {})
        print(f"  model   {r['name']}: {r['dimension']}D, labels: {labels} ({r.get('network')})")
    print(f"  studies {studies}" + (" (DICOMweb)" if is_dicomweb(str(studies)) else ""))
    print(f"  app     {app_dir}")
    print(f"  log     {log}" + ("" if args.verbose else " (the server's output; -v streams it here)"))
    print(f"  URL     {url}")
    print("3D Slicer: open the MONAI Label module, paste the URL into 'MONAI Label server', press the refresh button.")
    if args.host in ("0.0.0.0", "::"):
        print("Bound to every network interface: other computers reach it at http://<this computer's name>:PORT.")
    print("Stop the server with Ctrl+C.", flush=True)
    logger.info("server command: %s", " ".join(cmd))
    if args.dry_run:
        print(" ".join(cmd))
        return 0
    _exec_logged(cmd, env, log, args.verbose)
    return 1  # not reached


def _studies(args: argparse.Namespace) -> int:
    out = Path(args.out)
    n_images, n_labels = make_studies_folder(Path(args.prep), out, args.labels)
    total = sum(p.is_file() and p.name.lower().endswith(STUDY_EXTS) for p in out.iterdir())
    print(f"{out.resolve()}: {n_images} image(s) and {n_labels} label(s) copied, {total} studies there "
          f"(log: {log_path(args)})")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from data_prep.console import configure_output, reset_output

    configure_output(log_path(args), verbose=args.verbose)
    try:
        if args.command == "env":
            print(find_monailabel_python(args.python))
            return 0
        if args.command == "studies":
            return _studies(args)
        return serve(args)
    except (UsageError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    finally:
        reset_output()
