// Runs statements over mare's PostgreSQL wire protocol with the PostgreSQL JDBC driver and
// prints what the driver read, one fact per line, for tests/e2e/test_pgwire.py to compare with
// the data it loaded: java -cp <driver jar>:<dir> JdbcCheck <jdbc url>
import java.sql.*;
import org.postgresql.util.PSQLException;

public class JdbcCheck {
  public static void main(String[] args) throws Exception {
    try (Connection c = DriverManager.getConnection(args[0])) {
      try (PreparedStatement ps = c.prepareStatement(
               "SELECT ts, sensor_id, temperature, station FROM readings WHERE sensor_id = ? ORDER BY ts LIMIT 3")) {
        ps.setInt(1, 2);
        try (ResultSet rs = ps.executeQuery()) {
          ResultSetMetaData md = rs.getMetaData();
          StringBuilder types = new StringBuilder("types");
          for (int i = 1; i <= md.getColumnCount(); ++i) types.append(' ').append(md.getColumnTypeName(i));
          System.out.println(types);
          while (rs.next()) {
            System.out.println("row " + rs.getTimestamp(1).toInstant().getEpochSecond() + " " + rs.getLong(2) + " "
                               + rs.getDouble(3) + " " + rs.getString(4));
          }
        }
      }
      try (Statement st = c.createStatement(); ResultSet rs = st.executeQuery("SELECT count(*) FROM readings")) {
        rs.next();
        System.out.println("count " + rs.getLong(1));
      }
      try (Statement st = c.createStatement()) {
        st.executeQuery("SELECT nope FROM readings");
      } catch (PSQLException e) {
        System.out.println("error " + e.getSQLState() + " " + e.getServerErrorMessage().getPosition());
      }
      // A fetch size outside autocommit: Execute with a row limit, resumed after each PortalSuspended.
      c.setAutoCommit(false);
      try (Statement st = c.createStatement()) {
        st.setFetchSize(100);
        long rows = 0, sum = 0;
        try (ResultSet rs = st.executeQuery("SELECT sensor_id FROM readings")) {
          while (rs.next()) {
            ++rows;
            sum += rs.getLong(1);
          }
        }
        System.out.println("fetched " + rows + " " + sum);
      }
      c.commit();
    }
  }
}
