"""Label Studio round trip: scan, export, import into a real Label Studio server, and read the tasks back.

Proves that what `audit export --to label-studio --local-files ROOT` writes is what Label Studio accepts and
shows: the labelling config creates a project, every task imports (HTTP 201), each task read back through the
REST API has the exported data, the suggested label as its one prediction scored by its probability, no
annotation, and its image is served by Label Studio's local-files URL byte for byte. The dataset is copied
into a folder named ``shapes #1+x`` so that the URL encoding of ``#`` and ``+`` is exercised too.

Label Studio is large and pins its own Django stack, so it lives in a virtual environment of its own:

    python3 -m venv ~/ls-venv && ~/ls-venv/bin/pip install label-studio

The script runs its executable from --label-studio, else $LABEL_STUDIO_BIN, else `label-studio` on PATH,
bound to 127.0.0.1 on a free port, with a fresh data folder, local-files serving on and an API token; every
wait is bounded, and the server is stopped at the end, also on failure.

    python benchmarks/label_studio.py [--label-studio PATH] [--dataset sample_data] [--workdir DIR]
    python benchmarks/label_studio.py --smoke   # the label checks only: the same round trip, a shorter scan

Exits 1 if anything does not round-trip.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
HOST = "127.0.0.1"
TOKEN = "auditor-round-trip-token"
START_TIMEOUT_S = 420  # migrations of a fresh database take a minute or two on a busy 2-core machine
REQUEST_TIMEOUT_S = 60


def label_studio_executable(given: str | None) -> str | None:
    return given or os.environ.get("LABEL_STUDIO_BIN") or shutil.which("label-studio")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return int(probe.getsockname()[1])


class Server:
    """A Label Studio process on 127.0.0.1 and its REST API (token authentication)."""

    def __init__(self, executable: str, work: Path, document_root: Path) -> None:
        self.port = free_port()
        self.base = f"http://{HOST}:{self.port}"
        self.log_path = work / "label-studio.log"
        env = {**os.environ, "LABEL_STUDIO_LOCAL_FILES_SERVING_ENABLED": "true",
               "LABEL_STUDIO_LOCAL_FILES_DOCUMENT_ROOT": str(document_root),
               "LABEL_STUDIO_BASE_DATA_DIR": str(work / "ls-data"),
               "LATEST_VERSION_CHECK": "false", "COLLECT_ANALYTICS": "false"}
        with self.log_path.open("w") as log:
            self.process = subprocess.Popen(
                [executable, "start", "--no-browser", "--internal-host", HOST, "--port", str(self.port),
                 "--data-dir", str(work / "ls-data"), "--username", "auditor@example.com",
                 "--password", "auditor-round-trip", "--user-token", TOKEN, "--enable-legacy-api-token"],
                env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)

    def wait_until_up(self) -> float:
        started = time.monotonic()
        while time.monotonic() - started < START_TIMEOUT_S:
            if self.process.poll() is not None:
                raise RuntimeError(f"label-studio exited ({self.process.returncode}):\n{self.log_tail()}")
            try:
                with urllib.request.urlopen(f"{self.base}/health", timeout=5) as response:
                    if response.status == 200:
                        return time.monotonic() - started
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(2)
        raise RuntimeError(f"label-studio did not answer within {START_TIMEOUT_S} s:\n{self.log_tail()}")

    def log_tail(self) -> str:
        return self.log_path.read_text(errors="replace")[-3000:]

    def call(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(f"{self.base}{path}", data=data, method=method,
                                         headers={"Authorization": f"Token {TOKEN}",
                                                  "Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=REQUEST_TIMEOUT_S) as response:
                raw = response.read()
                status = response.status
        except urllib.error.HTTPError as error:
            raise RuntimeError(f"{method} {path}: HTTP {error.code}: {error.read()[:2000]!r}") from None
        if response.headers.get_content_type() == "application/json":
            return status, json.loads(raw)
        return status, raw

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=30)


def audit(*args: str) -> str:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    done = subprocess.run([sys.executable, "-m", "auditor", *args], env=env, capture_output=True, text=True,
                          check=False)
    if done.returncode != 0:
        raise RuntimeError(f"audit {' '.join(args)}: exit {done.returncode}\n{done.stderr[-3000:]}")
    return done.stdout


def export(dataset: Path, work: Path, smoke: bool) -> tuple[Path, Path, Path]:
    """The dataset copied below a document root, scanned and exported; (document root, dataset, tasks file)."""
    document_root = work / "files"
    copy = document_root / "shapes #1+x"
    shutil.copytree(dataset, copy)
    checks = ["--checks", "label_errors,ambiguous"] if smoke else []
    audit("scan", str(copy), "--out", str(work / "results"), "--encoder", "builtin", "--no-cache", "--quiet",
          *checks)
    tasks = work / "tasks.json"
    shown = audit("export", str(work / "results"), "--to", "label-studio", "--out", str(tasks),
                  "--local-files", str(document_root))
    print(shown.rstrip())
    return document_root, copy, tasks


def compare(server: Server, project: int, exported: list[dict[str, Any]], dataset: Path) -> tuple[int, int]:
    """Each task read back against its export, and its image fetched through the server; (tasks, images) that
    match. Mismatches are printed."""
    _, listing = server.call("GET", f"/api/tasks?project={project}&page_size={len(exported) + 10}")
    back = {task["data"]["path"]: task["id"] for task in listing["tasks"]}
    tasks_ok = images_ok = 0
    for sent in exported:
        path = sent["data"]["path"]
        if path not in back:
            print(f"  missing after import: {path}")
            continue
        _, task = server.call("GET", f"/api/tasks/{back[path]}")
        predictions = [(p["model_version"], p["score"], p["result"]) for p in task["predictions"]]
        expected = [(p["model_version"], p["score"], p["result"]) for p in sent["predictions"]]
        if task["data"] == sent["data"] and predictions == expected and task["annotations"] == [] \
                and task["meta"] == sent["meta"]:
            tasks_ok += 1
        else:
            print(f"  differs after import: {path}: {json.dumps(task)[:1500]}")
        _, image = server.call("GET", sent["data"]["image"])
        if image == (dataset / path).read_bytes():
            images_ok += 1
        else:
            print(f"  image not served as on disk: {sent['data']['image']}")
    return tasks_ok, images_ok


def round_trip(executable: str, dataset: Path, work: Path, smoke: bool) -> bool:
    document_root, copy, tasks_file = export(dataset, work, smoke)
    exported = json.loads(tasks_file.read_text(encoding="utf-8"))
    config = tasks_file.with_name(f"{tasks_file.stem}.label_config.xml").read_text(encoding="utf-8")
    server = Server(executable, work, document_root)
    try:
        print(f"label-studio up on {server.base} after {server.wait_until_up():.0f} s")
        status, project = server.call("POST", "/api/projects", {"title": "auditor round trip", "label_config": config})
        print(f"project from the exported labelling config: HTTP {status}")
        status, _ = server.call("POST", "/api/storages/localfiles", {
            "project": project["id"], "path": str(copy), "title": "dataset", "use_blob_urls": False})
        print(f"local files storage for {copy}: HTTP {status}")
        status, imported = server.call("POST", f"/api/projects/{project['id']}/import", exported)
        print(f"import: HTTP {status}, {imported['task_count']} tasks, {imported['prediction_count']} predictions "
              f"(exported {len(exported)} tasks, {sum(len(t['predictions']) for t in exported)} predictions)")
        tasks_ok, images_ok = compare(server, project["id"], exported, copy)
    finally:
        server.stop()
    print(f"server stopped (exit {server.process.returncode})")
    print(f"round trip: {tasks_ok}/{len(exported)} tasks match, images served: {images_ok}/{len(exported)} identical")
    return bool(exported) and tasks_ok == images_ok == len(exported)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--label-studio", help="the label-studio executable (default: $LABEL_STUDIO_BIN, PATH)")
    parser.add_argument("--dataset", type=Path, default=ROOT / "sample_data", help="a class-folder dataset")
    parser.add_argument("--workdir", type=Path, help="keep the scan, export and server data here")
    parser.add_argument("--smoke", action="store_true", help="scan only the label checks")
    args = parser.parse_args()
    executable = label_studio_executable(args.label_studio)
    if executable is None:
        print("label-studio not found: pass --label-studio, set LABEL_STUDIO_BIN, or put it on PATH",
              file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as scratch:
        work = args.workdir or Path(scratch)
        work.mkdir(parents=True, exist_ok=True)
        return 0 if round_trip(executable, args.dataset.resolve(), work.resolve(), args.smoke) else 1


if __name__ == "__main__":
    sys.exit(main())
