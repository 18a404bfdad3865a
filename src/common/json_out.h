// JsonOut: the JSON builder for mare's HTTP answers (the dashboard, the sensors list, ...),
// on json_writer's string and number writers, placing the commas itself:
//
//   JsonOut j;
//   j.Open('{').Key("sensor_id").Int(7).Key("values").Open('[').Num(1.5).Null().Close(']').Close('}');
//   j.str();  // {"sensor_id":7,"values":[1.5,null]}
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "common/json_writer.h"

namespace mare {

class JsonOut {
 public:
  JsonOut& Open(char bracket) {
    Sep();
    out_ += bracket;
    first_ = true;
    return *this;
  }
  JsonOut& Close(char bracket) {
    out_ += bracket;
    first_ = false;
    return *this;
  }
  JsonOut& Key(std::string_view key) {
    Sep();
    AppendJsonString(&out_, key);
    out_ += ':';
    first_ = true;
    return *this;
  }
  JsonOut& Str(std::string_view v) {
    Sep();
    AppendJsonString(&out_, v);
    return *this;
  }
  JsonOut& Num(double v) {
    Sep();
    AppendJsonNumber(&out_, v);
    return *this;
  }
  JsonOut& Int(int64_t v) {
    Sep();
    out_ += std::to_string(v);
    return *this;
  }
  JsonOut& Bool(bool v) {
    Sep();
    out_ += v ? "true" : "false";
    return *this;
  }
  JsonOut& Null() {
    Sep();
    out_ += "null";
    return *this;
  }
  // A value already written as JSON.
  JsonOut& Raw(std::string_view json) {
    Sep();
    out_ += json;
    return *this;
  }

  const std::string& str() const { return out_; }
  std::string Take() { return std::move(out_); }

 private:
  void Sep() {
    if (!first_) out_ += ',';
    first_ = false;
  }
  std::string out_;
  bool first_ = true;
};

}  // namespace mare
