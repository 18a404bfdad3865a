"""A real, throw-away MQTT broker for tests: Debian's `mosquitto` (2.0), on 127.0.0.1, with its
persistence file in a temporary directory, started and stopped by the test. A missing
`mosquitto` (scripts/setup.sh installs it, with mosquitto-clients) is an error, never a skip.

    with Mosquitto(tmp_path) as broker:
        broker.port
        broker.publish("observatory/7/readings", payload, qos=1)
        broker.publish_lines("observatory/7/readings", lines, qos=1)   # one message per line
        broker.stop(); broker.start()        # the same port, the sessions kept (persistence)

    # Users from a password file (mosquitto_passwd), anonymous clients refused; the test's own
    # publishes log in as the first user:
    Mosquitto(tmp_path, users={"buoy": "s3cret"})
    # A TLS listener (files in PEM; require_certificate: clients must present a certificate
    # signed by cafile); the test's publishes trust cafile (and present client_cert/client_key):
    Mosquitto(tmp_path, tls={"cafile": ca, "certfile": crt, "keyfile": key, "require_certificate": False})
    # The persistence file written after every change (a queued or delivered message, a
    # subscription), so that a broker killed -9 comes back with its sessions' queues; then
    # broker.wait_saved() once it is idle, and broker.kill9():
    Mosquitto(tmp_path, save_every_change=True)
"""
import os
import shutil
import signal
import socket
import subprocess
import time

from harness import free_port

# One `mosquitto_pub -l` given more than 65,535 QoS 1 lines may publish only part of them and
# still exit 0: it queues the lines ahead of the network, their 16-bit message ids repeat, and
# mosquitto 2.0.11 drops the connection (bench/mqtt.py's docstring has the figures).
PUBLISH_RUN = 50_000

# mosquitto saves its persistence file every 30 minutes and at a graceful stop by default; with
# these, at the end of every pass of its loop that changed something (autosave_interval counts
# changes: queued or delivered messages, subscriptions).
SAVE_EVERY_CHANGE = "autosave_on_changes true\nautosave_interval 1\n"


def _need(tool):
    path = shutil.which(tool) or (f"/usr/sbin/{tool}" if os.path.exists(f"/usr/sbin/{tool}") else None)
    if not path:
        raise RuntimeError(f"{tool} is not installed: run scripts/setup.sh (Debian mosquitto, mosquitto-clients)")
    return path


class Mosquitto:
    def __init__(self, base_dir, port=None, users=None, tls=None, client_cert=None, client_key=None,
                 save_every_change=False):
        self.dir = os.path.join(str(base_dir), "mosquitto")
        self.save_every_change = save_every_change
        self.port = port or free_port()
        self.proc = None
        self.out = None
        self.users = dict(users or {})
        self.tls = dict(tls or {})
        self.client_args = []
        if self.users:
            user, password = next(iter(self.users.items()))
            self.client_args += ["-u", user, "-P", password]
        if self.tls:
            self.client_args += ["--cafile", self.tls["cafile"]]
            if client_cert:
                self.client_args += ["--cert", client_cert, "--key", client_key]

    def _auth_conf(self):
        # Started as root, mosquitto drops to its own user before it reads the password and TLS
        # files and writes its persistence file, all in the test's private temporary directory:
        # it stays root instead. (As its own user it could not write the persistence file: every
        # save failed with "Permission denied", and a restart came back with no sessions.)
        conf = "user root\n"
        if not self.users and not self.tls:
            return conf + "allow_anonymous true\n"
        if self.users:
            passwd = os.path.join(self.dir, "passwd")
            open(passwd, "w").close()
            for user, password in self.users.items():
                p = subprocess.run([_need("mosquitto_passwd"), "-b", passwd, user, password], capture_output=True)
                if p.returncode != 0:
                    raise RuntimeError(f"mosquitto_passwd exited {p.returncode}: {p.stderr.decode(errors='replace')}")
            conf += f"allow_anonymous false\npassword_file {passwd}\n"
        else:
            conf += "allow_anonymous true\n"
        if self.tls:
            conf += (f"cafile {self.tls['cafile']}\ncertfile {self.tls['certfile']}\nkeyfile {self.tls['keyfile']}\n"
                     f"require_certificate {'true' if self.tls.get('require_certificate') else 'false'}\n")
        return conf

    def start(self, timeout=20):
        binary = _need("mosquitto")
        os.makedirs(self.dir, exist_ok=True)
        conf = os.path.join(self.dir, "mosquitto.conf")
        with open(conf, "w") as f:
            # No limit on what the broker queues for a session while its client is away: the
            # tests count on every message acknowledged to a publisher reaching mare.
            f.write(f"listener {self.port} 127.0.0.1\n{self._auth_conf()}persistence true\n"
                    f"persistence_location {self.dir}/\nmax_queued_messages 0\nmax_queued_bytes 0\n"
                    f"{SAVE_EVERY_CHANGE if self.save_every_change else ''}"
                    "log_dest stdout\nlog_type error\nlog_type warning\nlog_type notice\n")
        self.out = open(os.path.join(self.dir, "mosquitto.log"), "ab")
        self.proc = subprocess.Popen([binary, "-c", conf], stdout=self.out, stderr=subprocess.STDOUT)
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"mosquitto exited with {self.proc.returncode}:\n{self.log()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return self
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("mosquitto did not listen:\n" + self.log())

    def stop(self):
        """Graceful stop: the broker writes its persistence file (the sessions and their queues)."""
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(timeout=30)
        if self.out:
            self.out.close()
            self.out = None

    def kill9(self):
        """The broker gone at once: what it holds is what its persistence file last had."""
        self.proc.kill()
        self.proc.wait(timeout=30)
        self.out.close()
        self.out = None

    def wait_saved(self, quiet=0.3, timeout=20):
        """Until the persistence file has not changed for `quiet` seconds: with save_every_change,
        the broker is idle and the file holds what it acknowledged. mosquitto sends a PUBACK as it
        takes a message and saves at the end of that pass of its loop, so a publisher can exit a
        moment before the save of its last messages."""
        path = os.path.join(self.dir, "mosquitto.db")
        deadline = time.time() + timeout
        seen, since = None, time.time()
        while time.time() < deadline:
            st = os.stat(path) if os.path.exists(path) else None
            now = (st.st_mtime_ns, st.st_size) if st else None
            if now != seen:
                seen, since = now, time.time()
            elif now is not None and time.time() - since >= quiet:
                return
            time.sleep(0.02)
        raise AssertionError(f"mosquitto's persistence file did not settle:\n{self.log()}")

    def log(self):
        path = os.path.join(self.dir, "mosquitto.log")
        return open(path, "rb").read().decode(errors="replace")[-4000:] if os.path.exists(path) else ""

    def _pub(self, topic, qos, args, input=None, client_id=None):
        cmd = [_need("mosquitto_pub"), "-h", "127.0.0.1", "-p", str(self.port), "-t", topic, "-q", str(qos), "-V", "mqttv5",
               *self.client_args]
        if client_id:
            cmd += ["-i", client_id]
        p = subprocess.run(cmd + args, input=input, capture_output=True, timeout=300)
        if p.returncode != 0:
            raise AssertionError(f"mosquitto_pub exited {p.returncode}: {p.stderr.decode(errors='replace')}")

    def publish(self, topic, payload, qos=1):
        """One message; returns once the broker acknowledged it (QoS 1)."""
        self._pub(topic, qos, ["-s"], input=payload.encode() if isinstance(payload, str) else payload)

    def publish_lines(self, topic, lines, qos=1):
        """One message per line, from one client per PUBLISH_RUN lines; returns once the broker
        acknowledged them all."""
        for start in range(0, len(lines), PUBLISH_RUN):
            self._pub(topic, qos, ["-l"], input=("\n".join(lines[start:start + PUBLISH_RUN]) + "\n").encode())

    def publish_lines_async(self, topic, lines, qos=1):
        """As publish_lines, in the background, from one client (so at most PUBLISH_RUN lines):
        the Popen, to wait() on."""
        if len(lines) > PUBLISH_RUN:
            raise ValueError(f"{len(lines)} lines from one mosquitto_pub: at most {PUBLISH_RUN} are published whole")
        cmd = [_need("mosquitto_pub"), "-h", "127.0.0.1", "-p", str(self.port), "-t", topic, "-q", str(qos),
               "-V", "mqttv5", "-l", *self.client_args]
        p = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        p.stdin.write(("\n".join(lines) + "\n").encode())
        p.stdin.close()
        return p

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
