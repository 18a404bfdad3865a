"""The python a benchmark's peer needs: the venv scripts/setup-bench.sh makes for it under
MARE_BENCH_VENVS (default ~/.cache/mare/bench-venvs/<peer>), apart from python3, whose numpy 2
and pandas 3 the peers' pinned packages cannot share (elasticsearch-py 7.13.4, statsforecast 2.1.1).

    from peer_python import run_under_peer_venv
    run_under_peer_venv("elasticsearch", ["elasticsearch"])  # before importing it

runs the script again, with the same arguments, under that venv's python when the one running it
cannot import the modules; exits with what to run when the venv is missing too."""
import importlib.util
import os
import sys


def venv_dir(peer):
    base = os.environ.get("MARE_BENCH_VENVS") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "mare", "bench-venvs")
    return os.path.join(base, peer)


def run_under_peer_venv(peer, modules):
    missing = [m for m in modules if importlib.util.find_spec(m) is None]
    if not missing:
        return
    venv = venv_dir(peer)
    python = os.path.join(venv, "bin", "python")
    # Already under it (a venv's sys.prefix is the venv): the venv lacks them, do not loop.
    if os.path.realpath(sys.prefix) == os.path.realpath(venv) or not os.access(python, os.X_OK):
        sys.exit(f"{os.path.basename(sys.argv[0])}: Python module {', '.join(missing)} missing here and in {venv}: "
                 f"run scripts/setup-bench.sh")
    print(f"{os.path.basename(sys.argv[0])}: running under {python} (for {', '.join(missing)})", file=sys.stderr,
          flush=True)
    os.execv(python, [python, *sys.argv])
