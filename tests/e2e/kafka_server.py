"""A real, throw-away Apache Kafka for tests: KRaft brokers (each its own controller voter) from
Apache Kafka's jars on Maven Central, on 127.0.0.1, free ports and a temporary directory, started
and stopped by the test.

The jars are fetched once by Maven (tests/kafka/pom.xml) into build/kafka/lib (MARE_KAFKA_LIB to
choose another place) and reused; a missing `mvn`, `java` or network is an error, never a skip.

    with KafkaCluster(tmp_path) as kafka:          # one node
        kafka.bootstrap                              # "127.0.0.1:PORT"
    with KafkaCluster(tmp_path, brokers=3) as kafka: # three brokers, three voters
        kafka.stop_broker(1); kafka.start_broker(1)
    with KafkaCluster(tmp_path, sasl_ssl=SaslSsl("mare", "secret", keystore, "pw")) as kafka:
        kafka.sasl_bootstrap                         # a SASL_SSL (SCRAM-SHA-512) listener too
"""
import os
import shutil
import signal
import subprocess
import time
import uuid

from harness import free_port, stop_process
from maven_jars import maven_jars

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "../.."))
POM = os.path.join(ROOT, "tests/kafka/pom.xml")
LIB = os.environ.get("MARE_KAFKA_LIB", os.path.join(ROOT, "build/kafka/lib"))
HEAP = os.environ.get("MARE_KAFKA_HEAP", "-Xmx512m")


def kafka_classpath():
    """The broker's classpath (LIB/*), fetching the jars with Maven when the pom changed."""
    maven_jars(POM, LIB, "Apache Kafka's jars")
    if not any(n.startswith("kafka_2.13-") for n in os.listdir(LIB)):
        raise RuntimeError(f"no kafka_2.13 jar in {LIB}")
    return os.path.join(LIB, "*")


LOG4J = """log4j.rootLogger=WARN, file
log4j.appender.file=org.apache.log4j.FileAppender
log4j.appender.file.File={log}
log4j.appender.file.layout=org.apache.log4j.PatternLayout
log4j.appender.file.layout.ConversionPattern=[%d] %p %m (%c)%n
log4j.logger.kafka.server.KafkaRaftServer=INFO
log4j.logger.kafka.server.BrokerServer=INFO
"""


class SaslSsl:
    """A SASL_SSL listener beside PLAINTEXT (which the brokers and the harness's kcat keep using):
    TLS with the server certificate of a PKCS#12 keystore, and SCRAM-SHA-512 with one user, whose
    credentials are written into the cluster's metadata when its storage is formatted."""

    def __init__(self, user, password, keystore, keystore_password):
        self.user, self.password = user, password
        self.keystore, self.keystore_password = keystore, keystore_password


class Broker:
    def __init__(self, node_id, base_dir):
        self.node_id = node_id
        self.dir = os.path.join(base_dir, f"broker-{node_id}")
        self.port = free_port()
        self.sasl_port = free_port()
        self.controller_port = free_port()
        self.proc = None
        self.out = None

    @property
    def address(self):
        return f"127.0.0.1:{self.port}"


class KafkaCluster:
    """One or more KRaft nodes (process.roles=broker,controller), replication settings sized to the
    broker count. Use as a context manager, or start()/stop()."""

    def __init__(self, base_dir, brokers=1, properties=None, sasl_ssl=None):
        self.base_dir = os.path.join(str(base_dir), "kafka")
        self.sasl_ssl = sasl_ssl
        self.brokers = [Broker(i + 1, self.base_dir) for i in range(brokers)]
        self.cluster_id = None
        self.classpath = None
        self.extra = dict(properties or {})

    @property
    def bootstrap(self):
        return ",".join(b.address for b in self.brokers)

    @property
    def sasl_bootstrap(self):
        return ",".join(f"127.0.0.1:{b.sasl_port}" for b in self.brokers)

    def _properties(self, b):
        n = len(self.brokers)
        voters = ",".join(f"{x.node_id}@127.0.0.1:{x.controller_port}" for x in self.brokers)
        props = {
            "process.roles": "broker,controller",
            "node.id": b.node_id,
            "controller.quorum.voters": voters,
            "listeners": f"PLAINTEXT://127.0.0.1:{b.port},CONTROLLER://127.0.0.1:{b.controller_port}",
            "advertised.listeners": f"PLAINTEXT://127.0.0.1:{b.port}",
            "controller.listener.names": "CONTROLLER",
            "inter.broker.listener.name": "PLAINTEXT",
            "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
            "log.dirs": os.path.join(b.dir, "data"),
            "num.partitions": 1,
            "auto.create.topics.enable": "false",
            "offsets.topic.replication.factor": min(n, 3),
            "offsets.topic.num.partitions": 4,
            "transaction.state.log.replication.factor": min(n, 3),
            "transaction.state.log.min.isr": min(n, 2),
            "transaction.state.log.num.partitions": 4,
            "default.replication.factor": min(n, 3),
            "min.insync.replicas": min(n, 2),
            "group.initial.rebalance.delay.ms": 0,
            # A killed broker is noticed, and its partitions' leadership moved, within seconds.
            "broker.session.timeout.ms": 4000,
            "broker.heartbeat.interval.ms": 500,
            "replica.lag.time.max.ms": 5000,
            "num.network.threads": 2,
            "num.io.threads": 2,
            "num.recovery.threads.per.data.dir": 1,
            "log.cleaner.dedupe.buffer.size": 4 * 1024 * 1024,
            "controlled.shutdown.enable": "true",
        }
        if self.sasl_ssl:
            z = self.sasl_ssl
            props["listeners"] += f",SASL_SSL://127.0.0.1:{b.sasl_port}"
            props["advertised.listeners"] += f",SASL_SSL://127.0.0.1:{b.sasl_port}"
            props["listener.security.protocol.map"] += ",SASL_SSL:SASL_SSL"
            props.update({
                "sasl.enabled.mechanisms": "SCRAM-SHA-512",
                "listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config":
                    "org.apache.kafka.common.security.scram.ScramLoginModule required;",
                "ssl.keystore.type": "PKCS12",
                "ssl.keystore.location": z.keystore,
                "ssl.keystore.password": z.keystore_password,
            })
        props.update(self.extra)
        return "".join(f"{k}={v}\n" for k, v in props.items())

    def _java(self, b, main, *args):
        return ["java", HEAP, "-Xms64m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1", "-Djava.awt.headless=true",
                f"-Dlog4j.configuration=file:{os.path.join(b.dir, 'log4j.properties')}",
                "-cp", self.classpath, main, *args]

    def start(self):
        self.classpath = kafka_classpath()
        self.cluster_id = subprocess.run(["java", "-cp", self.classpath, "kafka.tools.StorageTool", "random-uuid"],
                                         capture_output=True, text=True, check=True).stdout.strip() or str(uuid.uuid4())
        for b in self.brokers:
            os.makedirs(b.dir, exist_ok=True)
            with open(os.path.join(b.dir, "server.properties"), "w") as f:
                f.write(self._properties(b))
            with open(os.path.join(b.dir, "log4j.properties"), "w") as f:
                f.write(LOG4J.format(log=os.path.join(b.dir, "server.log")))
            scram = []
            if self.sasl_ssl:
                z = self.sasl_ssl
                scram = ["--add-scram", f"SCRAM-SHA-512=[name={z.user},password={z.password}]"]
            p = subprocess.run(self._java(b, "kafka.tools.StorageTool", "format", "-t", self.cluster_id,
                                          "-c", os.path.join(b.dir, "server.properties"), *scram),
                               capture_output=True, text=True)
            if p.returncode != 0:
                raise RuntimeError(f"kafka StorageTool format failed:\n{p.stdout}{p.stderr}")
        try:
            for b in self.brokers:
                self._launch(b)
            self.wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def _launch(self, b):
        b.out = open(os.path.join(b.dir, "stdout.log"), "ab")
        b.proc = subprocess.Popen(self._java(b, "kafka.Kafka", os.path.join(b.dir, "server.properties")),
                                  stdout=b.out, stderr=subprocess.STDOUT)

    def wait_ready(self, timeout=120, brokers=None):
        """Until every running broker is in the cluster's metadata, as each running broker answers
        it (through kcat): one broker's view can lag another's for a moment after a start, and a
        client may ask any of them."""
        want = sorted(b.node_id for b in self.brokers if b.proc and b.proc.poll() is None) if brokers is None else brokers
        deadline = time.time() + timeout
        last = ""
        while time.time() < deadline:
            for b in self.brokers:
                if b.proc and b.proc.poll() is not None:
                    raise RuntimeError(f"kafka broker {b.node_id} exited with {b.proc.returncode}:\n{self.server_log(b)}")
            running = [b for b in self.brokers if b.proc and b.proc.poll() is None]
            agreed = True
            for b in running:
                p = subprocess.run([kcat(), "-b", b.address, "-L", "-J", "-m", "2"],
                                   capture_output=True, text=True, timeout=30)
                last = p.stdout + p.stderr
                if p.returncode != 0:
                    agreed = False
                    break
                import json
                meta = json.loads(p.stdout)
                ids = sorted(x["id"] for x in meta.get("brokers", []))
                if ids != want:
                    agreed = False
                    break
            if agreed and running:
                return
            time.sleep(0.3)
        raise RuntimeError(f"kafka did not become ready within {timeout} s (kcat -L: {last[-500:]})\n" +
                           "\n".join(self.server_log(b) for b in self.brokers))

    def server_log(self, b):
        out = []
        for name in ("stdout.log", "server.log"):
            path = os.path.join(b.dir, name)
            if os.path.exists(path):
                with open(path, "rb") as f:
                    out.append(f"--- broker {b.node_id} {name}:\n" + f.read().decode(errors="replace")[-3000:])
        return "\n".join(out)

    def stop_broker(self, i, kill=False):
        """Stops broker i (0-based): SIGTERM (a controlled shutdown) or SIGKILL."""
        b = self.brokers[i]
        stop_process(b.proc, kill)
        b.proc = None
        if b.out:
            b.out.close()
            b.out = None

    def start_broker(self, i, wait=True):
        self._launch(self.brokers[i])
        if wait:
            self.wait_ready()

    def stop(self):
        # Concurrently: a controlled shutdown waits for the other voters, so one at a time can hang.
        for b in self.brokers:
            if b.proc and b.proc.poll() is None:
                b.proc.send_signal(signal.SIGTERM)
        for i in range(len(self.brokers)):
            self.stop_broker(i)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    # --- kcat helpers -------------------------------------------------------------------------
    def produce(self, topic, lines, partition=None, key_delimiter="\t", partitioner=None):
        """Produces lines (KEY<TAB>VALUE) with kcat; acks=all. partitioner: librdkafka's
        (its default is consistent_random; murmur2_random is the Java client's default)."""
        args = [kcat(), "-b", self.bootstrap, "-P", "-t", topic, "-K", key_delimiter, "-X", "acks=all"]
        if partition is not None:
            args += ["-p", str(partition)]
        if partitioner is not None:
            args += ["-X", f"partitioner={partitioner}"]
        p = subprocess.run(args, input="".join(l + "\n" for l in lines), capture_output=True, text=True, timeout=60)
        if p.returncode != 0:
            raise RuntimeError(f"kcat -P failed: {p.stderr}")

    def consume(self, topic, timeout=60, committed=False, aborted=False):
        """Every record of the topic, from the beginning to the current end, as dicts
        {partition, offset, key, payload, ts} (kcat -J). committed: only what transactions
        committed (isolation.level=read_committed; the end is then the last stable offset).
        aborted: also the records of aborted and open transactions (read_uncommitted)."""
        import json
        isolation = ["-X", "isolation.level=read_committed"] if committed else []
        if aborted:
            isolation = ["-X", "isolation.level=read_uncommitted"]
        p = subprocess.run([kcat(), "-b", self.bootstrap, "-C", "-t", topic, "-o", "beginning", "-e", "-J", "-q",
                            *isolation],
                           capture_output=True, text=True, timeout=timeout)
        if p.returncode != 0:
            raise RuntimeError(f"kcat -C failed: {p.stderr}")
        return [json.loads(l) for l in p.stdout.splitlines() if l.strip()]

    def tool(self, main, *args, timeout=120):
        """Runs one of Kafka's own admin tools (org.apache.kafka.tools.*) against the cluster."""
        p = subprocess.run(["java", "-Xmx256m", "-XX:TieredStopAtLevel=1", "-cp", self.classpath, main,
                            "--bootstrap-server", self.bootstrap, *map(str, args)],
                           capture_output=True, text=True, timeout=timeout)
        if p.returncode != 0:
            raise RuntimeError(f"{main} {' '.join(map(str, args))} failed:\n{p.stdout[-2000:]}{p.stderr[-2000:]}")
        return p.stdout

    def create_topic(self, topic, partitions, replication=1):
        """Creates the topic and waits until every running broker's metadata has a leader for each
        of its partitions: the tool returns once the controller made it, and a producer that asks
        another broker too soon is told the topic has no partitions."""
        import json
        self.tool("org.apache.kafka.tools.TopicCommand", "--create", "--topic", topic, "--partitions", partitions,
                  "--replication-factor", replication)
        deadline = time.time() + 30
        for b in self.brokers:
            if b.proc is None or b.proc.poll() is not None:
                continue
            while True:
                p = subprocess.run([kcat(), "-b", b.address, "-L", "-t", topic, "-J"], capture_output=True, text=True,
                                   timeout=30)
                topics = json.loads(p.stdout).get("topics", []) if p.returncode == 0 and p.stdout else []
                parts = topics[0].get("partitions", []) if topics else []
                if len(parts) == int(partitions) and all(x.get("leader", -1) >= 0 for x in parts):
                    break
                assert time.time() < deadline, f"topic {topic} has no leaders on broker {b.address}: {p.stdout or p.stderr}"
                time.sleep(0.2)

    def group_offsets(self, group):
        """{(topic, partition): (committed offset, the partition's end offset)} of a consumer group, as
        Kafka's own tool reports them."""
        out = self.tool("org.apache.kafka.tools.consumer.group.ConsumerGroupCommand", "--describe", "--group", group)
        offsets = {}
        for line in out.splitlines():
            f = line.split()
            if len(f) >= 5 and f[0] == group and f[2].isdigit() and f[3].lstrip("-").isdigit() and f[4].isdigit():
                offsets[(f[1], int(f[2]))] = (int(f[3]), int(f[4]))
        return offsets

    def metadata(self):
        import json
        p = subprocess.run([kcat(), "-b", self.bootstrap, "-L", "-J"], capture_output=True, text=True, timeout=30, check=True)
        return json.loads(p.stdout)


def kcat():
    for name in ("kcat", "kafkacat"):
        if shutil.which(name):
            return name
    raise RuntimeError("kcat is not installed: run scripts/setup.sh")
