// BulkOutcome: what Elasticsearch did with each item of one `_bulk` request, read from its
// answer. The answer's HTTP status says little (a 200 can hide failed items): each item carries
// its own status, and an error with a type and a reason when it failed.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace mare::sinks {

struct BulkItemOutcome {
  int status = 0;     // the item's HTTP status: 200 or 201 done, 409 already there (a newer
                      // version, or a `create`'s id), 429 or 5xx retry
  std::string error;  // "mapper_parsing_exception: failed to parse field [x] ... (caused by ...)"; empty when done
};

// What to do with an item, from its status.
enum class BulkItemFate { kDone, kRetry, kRejected };
BulkItemFate FateOf(int status);

// Reads the items of a bulk answer, in request order. Corruption when `body` is not a bulk
// answer (then nothing can be known of any item: the whole request is retried).
Status ReadBulkResponse(std::string_view body, std::vector<BulkItemOutcome>* items);

// The outcome of each of the `sent` items of a bulk request from its answer's HTTP status and
// body. 200: each item's own, read by ReadBulkResponse (Corruption unless there is one per item).
// A 429 or 5xx answers the request whole (Elasticsearch's in-flight request breaker, its
// indexing pressure limit, a node without a master): every item is refused for now, with that
// status and the answer's error, and is sent again like an item answered so alone. Any other
// status (400, 401, 413...) is Unavailable: the request, not its items, is at fault.
Status ReadBulkAnswer(long http_status, std::string_view body, size_t sent, std::vector<BulkItemOutcome>* items);

}  // namespace mare::sinks
