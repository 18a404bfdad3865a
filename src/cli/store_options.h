// The store's options from the configuration (its [store] section and data_dir).
#pragma once

#include "config/config.h"
#include "store/store.h"

namespace mare::cli {

inline store::StoreOptions StoreOptionsFrom(const Config& config) {
  store::StoreOptions o;
  o.dir = config.data_dir + "/store";
  o.retention_us = config.store.retention_us;
  o.flush_rows = static_cast<size_t>(config.store.flush_rows);
  o.flush_interval_us = config.store.flush_interval_us;
  return o;
}

}  // namespace mare::cli
