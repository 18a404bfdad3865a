#include "pgwire/scram.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include <vector>

#include <fmt/format.h>

#include "common/split.h"

namespace mare::pgwire {
namespace {

constexpr char kBase64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

using Key = std::array<uint8_t, 32>;

bool Hmac(const Key& key, std::string_view data, Key* out) {
  unsigned int n = 0;
  return HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()), reinterpret_cast<const unsigned char*>(data.data()),
              data.size(), out->data(), &n) != nullptr &&
         n == out->size();
}

bool Sha256Of(const Key& in, Key* out) {
  unsigned int n = 0;
  return EVP_Digest(in.data(), in.size(), out->data(), &n, EVP_sha256(), nullptr) == 1 && n == out->size();
}

std::string_view AsBytes(const Key& k) { return {reinterpret_cast<const char*>(k.data()), k.size()}; }

// The value of attribute `name` ("r", "c", ...) at the start of `part`, "r=value".
bool Attribute(std::string_view part, char name, std::string_view* value) {
  if (part.size() < 2 || part[0] != name || part[1] != '=') return false;
  *value = part.substr(2);
  return true;
}


Status Malformed(std::string_view what) { return Status::InvalidArgument(fmt::format("malformed SCRAM message: {}", what)); }

}  // namespace

std::string Base64Encode(std::string_view bytes) {
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  size_t i = 0;
  for (; i + 3 <= bytes.size(); i += 3) {
    uint32_t v = static_cast<uint32_t>(static_cast<uint8_t>(bytes[i])) << 16 |
                 static_cast<uint32_t>(static_cast<uint8_t>(bytes[i + 1])) << 8 | static_cast<uint8_t>(bytes[i + 2]);
    for (int k = 3; k >= 0; --k) out.push_back(kBase64[(v >> (6 * k)) & 63]);
  }
  size_t rest = bytes.size() - i;
  if (rest > 0) {
    uint32_t v = static_cast<uint32_t>(static_cast<uint8_t>(bytes[i])) << 16;
    if (rest == 2) v |= static_cast<uint32_t>(static_cast<uint8_t>(bytes[i + 1])) << 8;
    out.push_back(kBase64[(v >> 18) & 63]);
    out.push_back(kBase64[(v >> 12) & 63]);
    out.push_back(rest == 2 ? kBase64[(v >> 6) & 63] : '=');
    out.push_back('=');
  }
  return out;
}

bool Base64Decode(std::string_view text, std::string* bytes) {
  bytes->clear();
  if (text.size() % 4 != 0) return false;
  auto value = [](char c) -> int {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
  };
  for (size_t i = 0; i < text.size(); i += 4) {
    bool last = i + 4 == text.size();
    int pad = last ? (text[i + 3] == '=') + (text[i + 2] == '=') : 0;
    if (pad == 1 && text[i + 2] == '=') return false;
    uint32_t v = 0;
    for (int k = 0; k < 4; ++k) {
      int d = k >= 4 - pad ? 0 : value(text[i + static_cast<size_t>(k)]);
      if (d < 0) return false;
      v = v << 6 | static_cast<uint32_t>(d);
    }
    bytes->push_back(static_cast<char>(v >> 16));
    if (pad < 2) bytes->push_back(static_cast<char>(v >> 8));
    if (pad < 1) bytes->push_back(static_cast<char>(v));
  }
  return true;
}

bool SameBytes(std::string_view a, std::string_view b) {
  return a.size() == b.size() && CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

Result<ScramSecret> DeriveScramSecret(std::string_view password, std::string_view salt, int iterations) {
  ScramSecret s;
  s.salt = std::string(salt);
  s.iterations = iterations;
  Key salted{}, client_key{};
  if (PKCS5_PBKDF2_HMAC(password.data(), static_cast<int>(password.size()), reinterpret_cast<const unsigned char*>(salt.data()),
                        static_cast<int>(salt.size()), iterations, EVP_sha256(), static_cast<int>(salted.size()),
                        salted.data()) != 1 ||
      !Hmac(salted, "Client Key", &client_key) || !Sha256Of(client_key, &s.stored_key) ||
      !Hmac(salted, "Server Key", &s.server_key)) {
    return Status::Unavailable("SCRAM: OpenSSL could not derive the keys");
  }
  OPENSSL_cleanse(salted.data(), salted.size());
  return s;
}

Result<ScramSecret> NewScramSecret(std::string_view password) {
  std::string salt(16, '\0');
  if (RAND_bytes(reinterpret_cast<unsigned char*>(salt.data()), static_cast<int>(salt.size())) != 1) {
    return Status::Unavailable("SCRAM: no random bytes for a salt");
  }
  return DeriveScramSecret(password, salt, 4096);
}

ScramExchange::ScramExchange(ScramSecret secret, std::string server_nonce)
    : secret_(std::move(secret)), server_nonce_(std::move(server_nonce)) {}

Result<std::string> ScramExchange::ServerFirst(std::string_view client_first) {
  // gs2-header: a channel-binding flag, an optional authzid, then client-first-message-bare.
  size_t first_comma = client_first.find(',');
  if (first_comma == std::string_view::npos) return Malformed("no GS2 header");
  size_t second_comma = client_first.find(',', first_comma + 1);
  if (second_comma == std::string_view::npos) return Malformed("no GS2 header");
  std::string_view flag = client_first.substr(0, first_comma);
  if (flag.starts_with("p=")) {
    return Status::InvalidArgument("SCRAM channel binding was asked for, but mare offers only SCRAM-SHA-256 without it");
  }
  if (flag != "n" && flag != "y") return Malformed("unexpected channel-binding flag");
  // 'y': the client could bind but thinks the server cannot; true here, SCRAM-SHA-256-PLUS is not offered.
  std::string_view authzid = client_first.substr(first_comma + 1, second_comma - first_comma - 1);
  if (!authzid.empty()) return Status::InvalidArgument("SCRAM authorization identities are not supported");
  gs2_header_ = std::string(client_first.substr(0, second_comma + 1));
  client_first_bare_ = std::string(client_first.substr(second_comma + 1));
  std::vector<std::string_view> parts = Split(client_first_bare_, ',');
  std::string_view user, client_nonce;
  if (parts.size() < 2 || !Attribute(parts[0], 'n', &user) || !Attribute(parts[1], 'r', &client_nonce) ||
      client_nonce.empty()) {
    return Malformed("client-first-message needs n= and r=");
  }
  if (parts[0].starts_with("m=")) return Malformed("mandatory extensions are not supported");
  // The user name inside SCRAM is ignored, as PostgreSQL ignores it: the startup's counts.
  if (server_nonce_.empty()) {
    std::string random(18, '\0');
    if (RAND_bytes(reinterpret_cast<unsigned char*>(random.data()), static_cast<int>(random.size())) != 1) {
      return Status::Unavailable("SCRAM: no random bytes for a nonce");
    }
    server_nonce_ = Base64Encode(random);
  }
  nonce_ = std::string(client_nonce) + server_nonce_;
  server_first_ = fmt::format("r={},s={},i={}", nonce_, Base64Encode(secret_.salt), secret_.iterations);
  return server_first_;
}

Result<std::string> ScramExchange::ServerFinal(std::string_view client_final) {
  if (server_first_.empty()) return Malformed("client-final-message before client-first-message");
  size_t proof_at = client_final.rfind(",p=");
  if (proof_at == std::string_view::npos) return Malformed("client-final-message has no proof");
  std::string_view without_proof = client_final.substr(0, proof_at);
  std::string proof;
  if (!Base64Decode(client_final.substr(proof_at + 3), &proof) || proof.size() != 32) return Malformed("bad proof");
  std::vector<std::string_view> parts = Split(without_proof, ',');
  std::string_view binding, nonce;
  if (parts.size() < 2 || !Attribute(parts[0], 'c', &binding) || !Attribute(parts[1], 'r', &nonce)) {
    return Malformed("client-final-message needs c= and r=");
  }
  std::string binding_bytes;
  if (!Base64Decode(binding, &binding_bytes) || binding_bytes != gs2_header_) {
    return Status::InvalidArgument("SCRAM channel binding check failed");
  }
  if (nonce != nonce_) return Status::InvalidArgument("SCRAM nonce does not match");
  std::string auth_message = fmt::format("{},{},{}", client_first_bare_, server_first_, without_proof);
  Key client_signature{}, client_key{}, stored{}, server_signature{};
  if (!Hmac(secret_.stored_key, auth_message, &client_signature)) return Status::Unavailable("SCRAM: HMAC failed");
  for (size_t i = 0; i < client_key.size(); ++i) client_key[i] = static_cast<uint8_t>(proof[i]) ^ client_signature[i];
  if (!Sha256Of(client_key, &stored)) return Status::Unavailable("SCRAM: SHA-256 failed");
  if (!SameBytes(AsBytes(stored), AsBytes(secret_.stored_key))) return Status::InvalidArgument("wrong password");
  if (!Hmac(secret_.server_key, auth_message, &server_signature)) return Status::Unavailable("SCRAM: HMAC failed");
  return "v=" + Base64Encode(AsBytes(server_signature));
}

std::string Md5PasswordResponse(std::string_view password, std::string_view user, const std::array<uint8_t, 4>& salt) {
  auto md5_hex = [](std::string_view bytes) {
    unsigned char d[16];
    unsigned int n = 0;
    EVP_Digest(bytes.data(), bytes.size(), d, &n, EVP_md5(), nullptr);
    std::string hex;
    for (unsigned int i = 0; i < n; ++i) hex += fmt::format("{:02x}", d[i]);
    return hex;
  };
  std::string inner = md5_hex(std::string(password) + std::string(user));
  inner.append(reinterpret_cast<const char*>(salt.data()), salt.size());
  return "md5" + md5_hex(inner);
}

}  // namespace mare::pgwire
