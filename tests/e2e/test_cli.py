"""The command line a user meets: help everywhere, config printing, clear errors."""
import subprocess

from harness import MARE, mare


def test_every_command_has_help():
    top = mare("--help").stdout
    for cmd in ("run", "simulate", "replay", "log"):
        assert cmd in top
        assert mare(cmd, "--help").stdout.strip()
    for sub in ("topics", "partitions", "groups", "tail", "verify"):
        assert mare("log", sub, "--help").stdout.strip()


def test_print_config_shows_effective_values(tmp_path):
    out = mare("run", "--config", "config/mare.toml", "--set", "log.fsync=batch", "--set", "sources.udp.threads=3",
               "--print-config").stdout
    assert 'fsync = "batch"' in out
    assert "threads = 3" in out
    assert 'retention = "1w"' in out
    assert 'listen = "127.0.0.1:20001"' in out


def test_config_errors_name_key_and_line(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text('[sources.udp]\nthreads = 2\nlisten_on = "0.0.0.0:1"\n')
    p = subprocess.run([MARE, "run", "--config", str(bad)], capture_output=True, text=True)
    assert p.returncode == 2
    assert "unknown key 'sources.udp.listen_on' (line 3" in p.stderr


def test_two_runs_cannot_share_a_data_dir(tmp_path):
    from harness import MareRun
    run = MareRun(tmp_path / "data")
    with run:
        second = MareRun(tmp_path / "data")
        p = subprocess.run(second.args(), capture_output=True, text=True, timeout=30)
        assert p.returncode != 0
        assert "lock" in (p.stdout + p.stderr).lower()
