// SCRAM-SHA-256 as PostgreSQL speaks it (RFC 5802 and RFC 7677, over SASL; no channel binding):
// the server's side of one exchange, and the secret it checks a proof against. The crypto is
// OpenSSL's (PBKDF2-HMAC-SHA-256, HMAC, SHA-256, RAND_bytes). docs/formats/pgwire.md.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

#include "common/status.h"

namespace mare::pgwire {

// What the server keeps of a password: a salt, an iteration count, and the two keys derived
// from them (RFC 5802 §3). The password itself is not needed during an exchange.
struct ScramSecret {
  std::string salt;  // raw bytes
  int iterations = 4096;
  std::array<uint8_t, 32> stored_key{};
  std::array<uint8_t, 32> server_key{};
};

// Derives the secret of `password` (used as given: SASLprep leaves ASCII passwords unchanged).
Result<ScramSecret> DeriveScramSecret(std::string_view password, std::string_view salt, int iterations);

// A fresh secret with a random 16-byte salt, PostgreSQL's default of 4096 iterations.
Result<ScramSecret> NewScramSecret(std::string_view password);

// One exchange: client-first-message in, server-first-message out; client-final-message in,
// server-final-message out. A wrong proof is Status::InvalidArgument("wrong password"); any
// other malformed message is Status::InvalidArgument naming what is wrong.
class ScramExchange {
 public:
  // server_nonce: printable characters without ','; empty draws 18 random bytes (base64).
  explicit ScramExchange(ScramSecret secret, std::string server_nonce = "");

  Result<std::string> ServerFirst(std::string_view client_first);
  Result<std::string> ServerFinal(std::string_view client_final);

 private:
  ScramSecret secret_;
  std::string server_nonce_;
  std::string gs2_header_;         // "n,," or "y,,"
  std::string client_first_bare_;  // "n=...,r=..."
  std::string nonce_;              // client's + server's
  std::string server_first_;
};

std::string Base64Encode(std::string_view bytes);
// False on anything that is not canonical padded base64.
bool Base64Decode(std::string_view text, std::string* bytes);

// PostgreSQL's MD5 password exchange: "md5" + hex(md5(hex(md5(password + user)) + salt)).
std::string Md5PasswordResponse(std::string_view password, std::string_view user, const std::array<uint8_t, 4>& salt);

// Constant-time equality of two byte strings of equal length (false when lengths differ).
bool SameBytes(std::string_view a, std::string_view b);

}  // namespace mare::pgwire
