// Asks mare's PostgreSQL wire protocol for its tables and columns the way DBeaver and other JDBC
// tools do (DatabaseMetaData, information_schema) and prints one fact per line, for
// tests/e2e/test_pgwire.py to compare with mare's own answers: java -cp ... JdbcCatalog <jdbc url>
import java.sql.*;

public class JdbcCatalog {
  public static void main(String[] args) throws Exception {
    try (Connection c = DriverManager.getConnection(args[0])) {
      DatabaseMetaData md = c.getMetaData();
      try (ResultSet rs = md.getSchemas()) {
        while (rs.next()) System.out.println("schema " + rs.getString("TABLE_SCHEM"));
      }
      try (ResultSet rs = md.getTables(null, "public", "%", new String[] {"TABLE"})) {
        while (rs.next()) {
          System.out.println("table " + rs.getString("TABLE_SCHEM") + " " + rs.getString("TABLE_NAME") + " "
                             + rs.getString("TABLE_TYPE"));
        }
      }
      try (ResultSet rs = md.getTables(null, null, "read%", null)) {
        while (rs.next()) System.out.println("like " + rs.getString("TABLE_NAME"));
      }
      try (ResultSet rs = md.getTables(null, null, "%", new String[] {"VIEW"})) {
        while (rs.next()) System.out.println("view " + rs.getString("TABLE_NAME"));
      }
      for (String table : new String[] {"readings", "forecasts"}) {
        try (ResultSet rs = md.getColumns(null, "public", table, "%")) {
          while (rs.next()) {
            System.out.println("column " + rs.getString("TABLE_NAME") + " " + rs.getInt("ORDINAL_POSITION") + " "
                               + rs.getString("COLUMN_NAME") + " " + rs.getString("TYPE_NAME") + " " + rs.getInt("DATA_TYPE")
                               + " " + rs.getInt("NULLABLE"));
          }
        }
      }
      try (ResultSet rs = md.getColumns(null, null, "readings", "temp%")) {
        while (rs.next()) System.out.println("pattern " + rs.getString("COLUMN_NAME"));
      }
      try (Statement st = c.createStatement();
           ResultSet rs = st.executeQuery(
               "SELECT table_schema, table_name, table_type FROM information_schema.tables WHERE table_schema = 'public' ORDER BY table_name")) {
        while (rs.next()) System.out.println("is_table " + rs.getString(1) + " " + rs.getString(2) + " " + rs.getString(3));
      }
      try (PreparedStatement ps = c.prepareStatement(
               "SELECT column_name, data_type, ordinal_position FROM information_schema.columns WHERE table_name = ? ORDER BY ordinal_position")) {
        ps.setString(1, "readings");
        try (ResultSet rs = ps.executeQuery()) {
          while (rs.next()) System.out.println("is_column " + rs.getString(1) + " " + rs.getString(2) + " " + rs.getInt(3));
        }
      }
    }
  }
}
