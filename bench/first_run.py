"""A new user's first run: a fresh clone, `make run` to the first answer, then `make test`.

    python -m bench first_run [--query TEXT] [--skip-test] [--keep DIR] [--baseline COMMIT]

Clones the repository's committed HEAD into an empty folder (so nothing of this checkout's `.venv`,
caches or uncommitted files helps), points ``DUALSEARCH_HOME`` at an empty folder (so the default
index is built, as on a new machine), and times, as wall seconds from the first command:

- ``make run`` until the demo page answers and one search through its API has come back (the
  install of the core and the demo, the one-time build of the default index, the server's start);
- the virtual environment's size after it, and which of the heavy extras it holds (none should be);
- ``make test`` in a second fresh clone (what CI runs: every extra, Chromium, lint, every test),
  unless ``--skip-test``; the benchmark data is passed on (``DUALSEARCH_DATA``) when this checkout
  finds it, so the same tests run as here.

Writes results/first_run.json. Nothing else may run on the machine meanwhile: the build encodes on
both cores, and the timings are a user's wait, not a ratio.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from bench.common import DEFAULT_DATA, REPO, log_phases_only, write_result

logger = logging.getLogger(__name__)
DEMO_URL = "http://127.0.0.1:7860/"
EXTRAS_NOT_FOR_RUN = ("ray", "openvino", "playwright", "pytest", "peft", "accelerate", "nncf", "matplotlib")
QUERY = "list the files in a directory"


def folder_bytes(folder: Path) -> int:
    """Bytes of the regular files under ``folder`` (symbolic links not followed)."""
    return sum(path.lstat().st_size for path in folder.rglob("*") if path.is_file() and not path.is_symlink())


def installed_packages(venv: Path) -> set[str]:
    """Lower-case distribution names installed in ``venv``."""
    listed = subprocess.run(
        [str(venv / "bin" / "python"), "-m", "pip", "list", "--format=freeze"], capture_output=True, text=True
    )
    return {line.split("==")[0].lower() for line in listed.stdout.splitlines() if "==" in line}


def port_is_free(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) != 0


def first_answer(clone: Path, env: dict, query: str, timeout: float = 3600) -> dict:
    """Start ``make run`` and time it to the page and to the first search answered through its API."""
    from gradio_client import Client

    started = time.perf_counter()
    log = (clone / "make-run.log").open("w")
    process = subprocess.Popen(
        ["make", "run"], cwd=clone, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    try:
        page_seconds = None
        while time.perf_counter() - started < timeout:
            if process.poll() is not None:
                raise RuntimeError(f"make run exited with {process.returncode}; see {clone / 'make-run.log'}")
            if not port_is_free(7860):
                page_seconds = time.perf_counter() - started
                break
            time.sleep(0.5)
        if page_seconds is None:
            raise RuntimeError(f"the demo did not answer within {timeout:.0f} s")
        results = Client(DEMO_URL, verbose=False).predict(query, 5, api_name="/search")[0]["results"]
        answer_seconds = time.perf_counter() - started
    finally:
        os.killpg(process.pid, signal.SIGINT)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
        log.close()
    said = (clone / "make-run.log").read_text(encoding="utf-8", errors="replace")
    return {
        "page_seconds": round(page_seconds, 1),
        "first_answer_seconds": round(answer_seconds, 1),
        "query": query,
        "top_results": [result["id"] for result in results],
        "says_the_build_happens_once": "once: later runs reuse it" in said,
    }


def fresh_clone(folder: Path, commit: str | None = None) -> Path:
    subprocess.run(["git", "clone", "--quiet", str(REPO), str(folder)], check=True)
    if commit is not None:
        subprocess.run(["git", "checkout", "--quiet", commit], cwd=folder, check=True)
    return folder


def timed_make(target: str, clone: Path, env: dict) -> dict:
    started = time.perf_counter()
    with (clone / f"make-{target}.log").open("w") as log:
        done = subprocess.run(["make", target], cwd=clone, env=env, stdout=log, stderr=subprocess.STDOUT)
    tail = (clone / f"make-{target}.log").read_text(encoding="utf-8", errors="replace").splitlines()[-3:]
    return {"seconds": round(time.perf_counter() - started, 1), "exit_code": done.returncode, "last_lines": tail}


def timed_run(clone: Path, env: dict, query: str) -> dict:
    """``make run`` in ``clone`` until its first answer, and the virtual environment it made."""
    run = first_answer(clone, env, query)
    venv = clone / ".venv"
    run["venv_mib"] = round(folder_bytes(venv) / 2**20)
    run["heavy_extras_installed"] = sorted(set(EXTRAS_NOT_FOR_RUN) & installed_packages(venv))
    logger.info("first answer after %.0f s; venv %d MiB", run["first_answer_seconds"], run["venv_mib"])
    return run


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--query", default=QUERY, help=f"the first question (default: {QUERY!r})")
    parser.add_argument("--skip-test", action="store_true", help="time `make run` only")
    parser.add_argument("--keep", type=Path, default=None, help="clone into this (empty) folder and keep it")
    parser.add_argument(
        "--baseline",
        metavar="COMMIT",
        help="also time `make run` at this commit first, in its own clone and empty home (a comparison in one run)",
    )
    args = parser.parse_args(argv)
    log_phases_only()
    if not port_is_free(7860):
        parser.error("port 7860 is taken: stop the demo that holds it first")

    work = args.keep or Path(tempfile.mkdtemp(prefix="dualsearch-first-run-"))
    clone, home = fresh_clone(work / "run"), work / "home"
    home.mkdir(parents=True, exist_ok=True)
    commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=clone, capture_output=True, text=True).stdout.strip()
    env = {key: value for key, value in os.environ.items() if key not in ("VIRTUAL_ENV", "PYTHONPATH")}
    env["DUALSEARCH_HOME"] = str(home)
    if DEFAULT_DATA.is_dir():
        env["DUALSEARCH_DATA"] = str(DEFAULT_DATA)

    payload = {"commit": commit}
    if args.baseline:
        baseline_home = work / "baseline-home"
        baseline_home.mkdir(parents=True, exist_ok=True)
        baseline = fresh_clone(work / "baseline", args.baseline)
        logger.info("make run in a fresh clone of the baseline %s", args.baseline)
        payload["baseline"] = {
            "commit": args.baseline,
            **timed_run(baseline, {**env, "DUALSEARCH_HOME": str(baseline_home)}, args.query),
        }
    logger.info("make run in a fresh clone of %s (%s)", REPO.name, commit[:12])
    payload["make_run"] = timed_run(clone, env, args.query)
    if not args.skip_test:
        logger.info("make test in a second fresh clone")
        payload["make_test"] = timed_make("test", fresh_clone(work / "test"), env)
        logger.info("make test: %.0f s, exit %d", payload["make_test"]["seconds"], payload["make_test"]["exit_code"])
    write_result("first_run", payload)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
