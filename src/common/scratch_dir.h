// ScratchDir: a fresh, empty directory under /tmp for one test, removed with everything in it
// when the object goes away. Declare it before the members that keep files open in it.
//
//   class LogTest : public ::testing::Test {
//     ScratchDir scratch_{"mare-log-test"};
//     const std::string dir_ = scratch_.path();
//   };
#pragma once

#include <stdlib.h>

#include <filesystem>
#include <stdexcept>
#include <string>

namespace mare {

class ScratchDir {
 public:
  explicit ScratchDir(const std::string& prefix = "mare-test") {
    std::string tmpl = "/tmp/" + prefix + "-XXXXXX";
    if (::mkdtemp(tmpl.data()) == nullptr) throw std::runtime_error("mkdtemp " + tmpl + " failed");
    path_ = tmpl;
  }
  ~ScratchDir() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  ScratchDir(const ScratchDir&) = delete;
  ScratchDir& operator=(const ScratchDir&) = delete;

  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

}  // namespace mare
