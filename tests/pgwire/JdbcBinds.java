// Typed parameters over mare's PostgreSQL wire protocol with the PostgreSQL JDBC driver: setLong
// and setDouble (bound in binary), setTimestamp and setObject(OffsetDateTime) (text, the former
// with no type and the JVM's zone offset), setString; prints the rows read, one fact per line,
// for tests/e2e/test_pgwire.py: java -cp <driver jar>:<dir> JdbcBinds <jdbc url> <epoch second>
import java.sql.*;
import java.time.Instant;
import java.time.OffsetDateTime;
import java.time.ZoneOffset;

public class JdbcBinds {
  static void print(String what, PreparedStatement ps) throws SQLException {
    try (ResultSet rs = ps.executeQuery()) {
      while (rs.next()) {
        System.out.println(what + " " + rs.getTimestamp(1).toInstant().getEpochSecond() + " " + rs.getLong(2) + " "
                           + rs.getDouble(3) + " " + rs.getString(4));
      }
    }
  }

  public static void main(String[] args) throws Exception {
    long from = Long.parseLong(args[1]);
    try (Connection c = DriverManager.getConnection(args[0])) {
      String sql = "SELECT ts, sensor_id, temperature, station FROM readings "
                   + "WHERE ts >= ? AND sensor_id = ? AND temperature >= ? AND station = ? ORDER BY ts LIMIT 3";
      // Run more than prepareThreshold (5) times: the driver then switches to a named statement
      // whose parameters it describes first, and binds by the types the server gave back.
      for (int k = 0; k < 6; ++k) {
        try (PreparedStatement ps = c.prepareStatement(sql)) {
          ps.setTimestamp(1, Timestamp.from(Instant.ofEpochSecond(from)));
          ps.setLong(2, 3L);
          ps.setDouble(3, 10.5);
          ps.setString(4, "s1");
          print(k == 0 ? "timestamp" : "again" + k, ps);
        }
      }
      try (PreparedStatement ps = c.prepareStatement(sql)) {
        ps.setObject(1, OffsetDateTime.ofInstant(Instant.ofEpochSecond(from), ZoneOffset.ofHours(-3)));
        ps.setObject(2, 3L);
        ps.setObject(3, 10.5d);
        ps.setObject(4, "s1");
        print("offset", ps);
      }
      // timestamp without zone: a wall-clock time of the session's TimeZone, which the driver set
      // to the JVM's zone at startup (as PostgreSQL reads it); int4, float4 and numeric.
      try (PreparedStatement ps = c.prepareStatement(sql)) {
        ps.setObject(1, java.time.LocalDateTime.ofInstant(Instant.ofEpochSecond(from), java.time.ZoneId.systemDefault()));
        ps.setInt(2, 3);
        ps.setFloat(3, 10.5f);
        ps.setString(4, "s1");
        print("local", ps);
      }
      try (PreparedStatement ps = c.prepareStatement(sql)) {
        ps.setTimestamp(1, Timestamp.from(Instant.ofEpochSecond(from)));
        ps.setBigDecimal(2, new java.math.BigDecimal("3"));
        ps.setBigDecimal(3, new java.math.BigDecimal("10.50"));
        ps.setString(4, "s1");
        print("decimal", ps);
      }
      // The session's TimeZone (the JVM's, sent at startup) and a timestamptz's text in it.
      try (Statement st = c.createStatement()) {
        try (ResultSet rs = st.executeQuery("SHOW TimeZone")) {
          rs.next();
          System.out.println("zone " + rs.getString(1));
        }
        try (ResultSet rs = st.executeQuery("SELECT ts FROM readings WHERE ts >= TIMESTAMP '2024-01-01 00:00:01' ORDER BY ts LIMIT 1")) {
          rs.next();
          System.out.println("zoned " + rs.getString(1) + " " + rs.getTimestamp(1).toInstant().getEpochSecond());
        }
      }
      // A NULL parameter compares as SQL NULL: no rows.
      try (PreparedStatement ps = c.prepareStatement(sql)) {
        ps.setNull(1, Types.TIMESTAMP);
        ps.setLong(2, 3L);
        ps.setDouble(3, 10.5);
        ps.setString(4, "s1");
        print("null", ps);
        System.out.println("null done");
      }
    }
  }
}
