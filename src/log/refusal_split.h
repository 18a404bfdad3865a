// SplitAfterRefusal: what becomes of the requests of a Kafka transaction the brokers aborted for
// a record refused for good: the one at fault fails alone, the others run again, and it ends.
//
// HTTP ingest groups concurrent requests in one transaction (kafka_transactions.h). When the
// brokers refuse a record for good (over max.message.bytes, say) the whole transaction is
// aborted, nothing of it stored. Failing every request would punish the innocent, so the
// requests run again in new transactions, split so that each round's groups are smaller than the
// group they came from (the splitting ends) and no request is in two of them (none is stored
// twice).
#pragma once

#include <cstddef>
#include <optional>
#include <vector>

namespace mare::log {

struct RefusalSplit {
  // The one request at fault, when exactly one was named: it fails with the brokers' reason.
  std::optional<size_t> fails;
  // Groups of requests (indexes into the aborted group) to run again, in this order.
  std::vector<std::vector<size_t>> run_again;
};

// refused[i]: request i's records were named refused by their delivery reports. For a group of
// two or more whose transaction was aborted by a refusal. None named (librdkafka 2.0 may report
// the refused record purged, saying why only in the transaction's error): each runs again alone.
// One named: it fails, the others run again together. Several (their records may have shared a
// refused batch): each of them runs again alone, then the others together.
RefusalSplit SplitAfterRefusal(const std::vector<bool>& refused);

}  // namespace mare::log
