#include "batch/mariadb_rollups.h"

#include "sinks/mariadb/rollup_rows.h"

namespace mare::batch {

Result<std::unique_ptr<MariaDbRollups>> MariaDbRollups::Connect(const sinks::MariaDbSinkOptions& o) {
  std::unique_ptr<MariaDbRollups> m(new MariaDbRollups());
  MARE_RETURN_IF_ERROR(m->conn_.Connect(
      {.host = o.host, .port = o.port, .socket = o.socket, .user = o.user, .password = o.password, .database = o.database}));
  m->writer_ = std::make_unique<sinks::RollupWriter>(o.resolutions, "batch");
  MARE_RETURN_IF_ERROR(m->writer_->Open(&m->conn_));
  if (mysql_autocommit(m->conn_.mysql, 0) != 0) return m->conn_.Error("autocommit off");
  return m;
}

MariaDbRollups::~MariaDbRollups() {
  if (writer_) writer_->Close();
  conn_.Close();
}

Status MariaDbRollups::Read(const std::vector<std::string>& resolutions, int64_t from_us, int64_t to_us,
                            const std::vector<uint32_t>& sensors, RollupsByKey* out) {
  std::vector<sinks::RollupMessage> rows;
  for (const std::string& r : resolutions) MARE_RETURN_IF_ERROR(sinks::ReadRollupRows(&conn_, r, from_us, to_us, sensors, &rows));
  // End the read's transaction, so that the next read sees rows committed meanwhile.
  MARE_RETURN_IF_ERROR(conn_.Exec("COMMIT"));
  for (auto& m : rows) out->emplace(KeyOf(m), std::move(m));
  return Status::OK();
}

Status MariaDbRollups::Write(const std::vector<sinks::RollupMessage>& rows) {
  if (rows.empty()) return Status::OK();
  std::vector<const sinks::RollupMessage*> pointers;
  pointers.reserve(rows.size());
  for (const auto& m : rows) pointers.push_back(&m);
  Status s = writer_->Upsert(pointers);
  if (s.ok()) s = conn_.Exec("COMMIT");
  if (!s.ok()) {
    Status rolled_back = conn_.Exec("ROLLBACK");
    if (!rolled_back.ok()) return Status::Unavailable(s.message() + " (and rollback: " + rolled_back.message() + ")");
  }
  return s;
}

}  // namespace mare::batch
