// The server's side of SCRAM-SHA-256 against RFC 7677's example exchange (user "user", password
// "pencil"), and the ways a client's messages can be wrong; MD5's answer against PostgreSQL's
// formula computed independently (Python's hashlib).
#include <gtest/gtest.h>

#include "pgwire/scram.h"

namespace mare::pgwire {
namespace {

// RFC 7677 §3.
constexpr const char* kClientFirst = "n,,n=user,r=rOprNGfwEbeRWgbNEkqO";
constexpr const char* kServerNonce = "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0";
constexpr const char* kServerFirst = "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";
constexpr const char* kClientFinal =
    "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=";
constexpr const char* kServerFinal = "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=";

ScramSecret RfcSecret(std::string_view password = "pencil") {
  std::string salt;
  EXPECT_TRUE(Base64Decode("W22ZaJ0SNY7soEsUEjb6gQ==", &salt));
  auto secret = DeriveScramSecret(password, salt, 4096);
  EXPECT_TRUE(secret.ok());
  return *secret;
}

TEST(Scram, Rfc7677ExampleExchange) {
  ScramExchange exchange(RfcSecret(), kServerNonce);
  auto first = exchange.ServerFirst(kClientFirst);
  ASSERT_TRUE(first.ok()) << first.status().message();
  EXPECT_EQ(*first, kServerFirst);
  auto final_message = exchange.ServerFinal(kClientFinal);
  ASSERT_TRUE(final_message.ok()) << final_message.status().message();
  EXPECT_EQ(*final_message, kServerFinal);
}

TEST(Scram, AnotherPasswordIsRefused) {
  ScramExchange exchange(RfcSecret("pencils"), kServerNonce);
  ASSERT_TRUE(exchange.ServerFirst(kClientFirst).ok());
  auto final_message = exchange.ServerFinal(kClientFinal);
  ASSERT_FALSE(final_message.ok());
  EXPECT_EQ(final_message.status().message(), "wrong password");
}

TEST(Scram, TamperedProofIsRefused) {
  ScramExchange exchange(RfcSecret(), kServerNonce);
  ASSERT_TRUE(exchange.ServerFirst(kClientFirst).ok());
  std::string tampered = kClientFinal;
  tampered[tampered.size() - 3] = tampered[tampered.size() - 3] == 'A' ? 'B' : 'A';
  auto final_message = exchange.ServerFinal(tampered);
  ASSERT_FALSE(final_message.ok());
  EXPECT_EQ(final_message.status().message(), "wrong password");
}

TEST(Scram, NonceAndChannelBindingMustMatch) {
  {
    ScramExchange exchange(RfcSecret(), kServerNonce);
    ASSERT_TRUE(exchange.ServerFirst(kClientFirst).ok());
    // Another server nonce than the one sent: a replayed client-final-message.
    auto m = exchange.ServerFinal("c=biws,r=rOprNGfwEbeRWgbNEkqOXXXX,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=");
    ASSERT_FALSE(m.ok());
    EXPECT_NE(m.status().message(), "wrong password");
  }
  {
    ScramExchange exchange(RfcSecret(), kServerNonce);
    ASSERT_TRUE(exchange.ServerFirst(kClientFirst).ok());
    // c= must repeat the GS2 header "n,," (biws); "y,," is eSws.
    std::string final_message = kClientFinal;
    final_message.replace(2, 4, "eSws");
    EXPECT_FALSE(exchange.ServerFinal(final_message).ok());
  }
  // 'y': the client can bind but the server offered no -PLUS mechanism: accepted, and c= says so.
  ScramExchange y(RfcSecret(), kServerNonce);
  auto first = y.ServerFirst("y,,n=,r=abc");
  ASSERT_TRUE(first.ok());
  EXPECT_TRUE(first->starts_with("r=abc%hvYD"));
  // Channel binding asked for, an authzid, no nonce: refused before any proof.
  EXPECT_FALSE(ScramExchange(RfcSecret()).ServerFirst("p=tls-server-end-point,,n=,r=abc").ok());
  EXPECT_FALSE(ScramExchange(RfcSecret()).ServerFirst("n,a=admin,n=,r=abc").ok());
  EXPECT_FALSE(ScramExchange(RfcSecret()).ServerFirst("n,,n=user").ok());
  EXPECT_FALSE(ScramExchange(RfcSecret()).ServerFirst("garbage").ok());
  EXPECT_FALSE(ScramExchange(RfcSecret()).ServerFinal(kClientFinal).ok());  // no client-first yet
}

TEST(Scram, RandomNonceAndSaltDifferEachTime) {
  auto a = NewScramSecret("pencil"), b = NewScramSecret("pencil");
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(a->salt.size(), 16u);
  EXPECT_NE(a->salt, b->salt);
  EXPECT_NE(a->stored_key, b->stored_key);
  ScramExchange x(*a), y(*a);
  auto fx = x.ServerFirst("n,,n=,r=abc"), fy = y.ServerFirst("n,,n=,r=abc");
  ASSERT_TRUE(fx.ok() && fy.ok());
  EXPECT_TRUE(fx->starts_with("r=abc"));
  EXPECT_NE(*fx, *fy);
}

TEST(Scram, Base64RoundTripsAndRefusesNonCanonical) {
  for (std::string_view s : {"", "f", "fo", "foo", "foob", "fooba", "foobar"}) {
    std::string back;
    ASSERT_TRUE(Base64Decode(Base64Encode(s), &back));
    EXPECT_EQ(back, s);
  }
  EXPECT_EQ(Base64Encode("foobar"), "Zm9vYmFy");
  EXPECT_EQ(Base64Encode("fo"), "Zm8=");
  std::string out;
  EXPECT_FALSE(Base64Decode("Zm8", &out));
  EXPECT_FALSE(Base64Decode("Z=8=", &out));
  EXPECT_FALSE(Base64Decode("Zm8*", &out));
}

TEST(Md5Password, MatchesPostgresFormula) {
  // python3: 'md5' + md5(md5(b'pencil' + b'user').hexdigest().encode() + bytes([1, 2, 3, 4])).hexdigest()
  EXPECT_EQ(Md5PasswordResponse("pencil", "user", {1, 2, 3, 4}), "md54376eb6913b38f9aaff38dc7cf19ca76");
  EXPECT_NE(Md5PasswordResponse("pencil", "other", {1, 2, 3, 4}), "md54376eb6913b38f9aaff38dc7cf19ca76");
}

}  // namespace
}  // namespace mare::pgwire
