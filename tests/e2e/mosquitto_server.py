"""A real, throw-away MQTT broker for tests: Debian's `mosquitto` (2.0), on 127.0.0.1, with its
persistence file in a temporary directory, started and stopped by the test. A missing
`mosquitto` (scripts/setup.sh installs it, with mosquitto-clients) is an error, never a skip.

    with Mosquitto(tmp_path) as broker:
        broker.port
        broker.publish("observatory/7/readings", payload, qos=1)
        broker.publish_lines("observatory/7/readings", lines, qos=1)   # one message per line
        broker.stop(); broker.start()        # the same port, the sessions kept (persistence)
"""
import os
import shutil
import signal
import socket
import subprocess
import time

from harness import free_port


def _need(tool):
    path = shutil.which(tool) or (f"/usr/sbin/{tool}" if os.path.exists(f"/usr/sbin/{tool}") else None)
    if not path:
        raise RuntimeError(f"{tool} is not installed: run scripts/setup.sh (Debian mosquitto, mosquitto-clients)")
    return path


class Mosquitto:
    def __init__(self, base_dir, port=None):
        self.dir = os.path.join(str(base_dir), "mosquitto")
        self.port = port or free_port()
        self.proc = None
        self.out = None

    def start(self, timeout=20):
        binary = _need("mosquitto")
        os.makedirs(self.dir, exist_ok=True)
        conf = os.path.join(self.dir, "mosquitto.conf")
        with open(conf, "w") as f:
            # No limit on what the broker queues for a session while its client is away: the
            # tests count on every message acknowledged to a publisher reaching mare.
            f.write(f"listener {self.port} 127.0.0.1\nallow_anonymous true\npersistence true\n"
                    f"persistence_location {self.dir}/\nmax_queued_messages 0\nmax_queued_bytes 0\n"
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

    def log(self):
        path = os.path.join(self.dir, "mosquitto.log")
        return open(path, "rb").read().decode(errors="replace")[-4000:] if os.path.exists(path) else ""

    def _pub(self, topic, qos, args, input=None, client_id=None):
        cmd = [_need("mosquitto_pub"), "-h", "127.0.0.1", "-p", str(self.port), "-t", topic, "-q", str(qos), "-V", "mqttv5"]
        if client_id:
            cmd += ["-i", client_id]
        p = subprocess.run(cmd + args, input=input, capture_output=True, timeout=300)
        if p.returncode != 0:
            raise AssertionError(f"mosquitto_pub exited {p.returncode}: {p.stderr.decode(errors='replace')}")

    def publish(self, topic, payload, qos=1):
        """One message; returns once the broker acknowledged it (QoS 1)."""
        self._pub(topic, qos, ["-s"], input=payload.encode() if isinstance(payload, str) else payload)

    def publish_lines(self, topic, lines, qos=1):
        """One message per line, from one client; returns once the broker acknowledged them all."""
        self._pub(topic, qos, ["-l"], input=("\n".join(lines) + "\n").encode())

    def publish_lines_async(self, topic, lines, qos=1):
        """As publish_lines, in the background: the Popen, to wait() on."""
        cmd = [_need("mosquitto_pub"), "-h", "127.0.0.1", "-p", str(self.port), "-t", topic, "-q", str(qos),
               "-V", "mqttv5", "-l"]
        p = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        p.stdin.write(("\n".join(lines) + "\n").encode())
        p.stdin.close()
        return p

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
