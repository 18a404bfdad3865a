// Logs in to mare's PostgreSQL wire protocol with the PostgreSQL JDBC driver (the password in the
// URL, exchanged as the server asks: SCRAM-SHA-256, MD5 or cleartext) and prints the readings'
// count, or the SQLSTATE the login was refused with: java -cp <driver jar>:<dir> JdbcLogin <jdbc url>
import java.sql.*;

public class JdbcLogin {
  public static void main(String[] args) throws Exception {
    try (Connection c = DriverManager.getConnection(args[0]);
         Statement st = c.createStatement();
         ResultSet rs = st.executeQuery("SELECT count(*) FROM readings")) {
      rs.next();
      System.out.println("count " + rs.getLong(1));
    } catch (SQLException e) {
      System.out.println("refused " + e.getSQLState());
    }
  }
}
