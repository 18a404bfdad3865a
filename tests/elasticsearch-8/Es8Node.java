// One Elasticsearch 8 node inside this JVM, for mare's tests (tests/e2e/elasticsearch8_server.py):
// the real server, started through Elasticsearch's own test framework, HTTP on the port asked.
//
// The framework's MockNode takes its plugins from the classpath (Netty 4 for HTTP and transport),
// where a plain Node wants a distribution's modules folder; it must run inside a randomized-testing
// context (ESTestCase's set-up asks for its random source), hence the JUnit runner around one
// "test" that starts the node and waits until the process is stopped. Elasticsearch refuses to
// run as root: the harness starts this as an unprivileged user.
//
//   java -Des8.home=DIR -Des8.http_port=P -Des8.transport_port=Q -cp 'classes:lib/*' Es8Node
import com.carrotsearch.randomizedtesting.RandomizedRunner;
import com.carrotsearch.randomizedtesting.annotations.ThreadLeakScope;
import com.carrotsearch.randomizedtesting.annotations.Timeout;
import com.carrotsearch.randomizedtesting.annotations.TimeoutSuite;
import java.nio.file.Path;
import java.util.List;
import org.elasticsearch.common.settings.Settings;
import org.elasticsearch.node.MockNode;
import org.elasticsearch.transport.netty4.Netty4Plugin;
import org.junit.Test;
import org.junit.runner.JUnitCore;
import org.junit.runner.RunWith;

@RunWith(RandomizedRunner.class)
@ThreadLeakScope(ThreadLeakScope.Scope.NONE)
@TimeoutSuite(millis = Integer.MAX_VALUE)
@Timeout(millis = Integer.MAX_VALUE)
public class Es8Node {
  @Test
  public void run() throws Exception {
    String home = System.getProperty("es8.home");
    Settings settings = Settings.builder()
        .put("path.home", home)
        .put("path.data", home + "/data")
        .put("path.logs", home + "/logs")
        .put("cluster.name", "mare-test-es8")
        .put("node.name", "es8")
        .put("network.host", "127.0.0.1")
        .put("http.port", System.getProperty("es8.http_port"))
        .put("transport.port", System.getProperty("es8.transport_port"))
        .put("discovery.type", "single-node")
        .put("http.type", "netty4")
        .put("transport.type", "netty4")
        // A nearly full disk must not turn the test's indices read-only.
        .put("cluster.routing.allocation.disk.threshold_enabled", false)
        .build();
    MockNode node = new MockNode(settings, List.of(Netty4Plugin.class), Path.of(home), true, () -> {});
    node.start();
    System.out.println("mare-es8-node started");
    Thread.sleep(Long.MAX_VALUE);
  }

  public static void main(String[] args) {
    JUnitCore.main(Es8Node.class.getName());
  }
}
