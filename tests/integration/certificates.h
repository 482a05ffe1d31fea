// Test certificates made with the openssl CLI: a CA, a server certificate it signed for 127.0.0.1
// and localhost (subjectAltName), and a second CA that signed nothing of ours. Header-only, for the
// integration tests.
#pragma once

#include <sys/stat.h>

#include <catch2/catch.hpp>
#include <fstream>
#include <string>
#include <vector>

#include "testing/subprocess.h"
#include "testing/testing.h"

namespace hpsearch::testing {

// A CA and a server certificate it signed for 127.0.0.1 and localhost, made with the openssl CLI.
struct TestCertificates {
  std::string ca;
  std::string cert;
  std::string key;
  std::string other_ca;  // a CA that signed nothing of ours
};

inline TestCertificates MakeCertificates(const TempDir& dir) {
  auto openssl = [](std::vector<std::string> args) {
    args.insert(args.begin(), "/usr/bin/openssl");
    ProcessResult result = RunProcess(args);
    INFO("openssl " << args[1] << ": " << result.err);
    REQUIRE(result.exit_code == 0);
  };
  auto path = [&](const char* name) { return (dir / name).string(); };
  auto make_ca = [&](const std::string& key, const std::string& cert, const std::string& cn) {
    openssl({"req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
             "-keyout", key, "-out", cert, "-days", "2", "-subj", "/CN=" + cn, "-addext",
             "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign"});
  };
  make_ca(path("ca.key"), path("ca.pem"), "hpsearch test CA");
  make_ca(path("other-ca.key"), path("other-ca.pem"), "some other CA");
  openssl({"req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout",
           path("server.key"), "-out", path("server.csr"), "-subj", "/CN=localhost"});
  std::string ext = path("server.ext");
  std::ofstream(ext) << "subjectAltName=IP:127.0.0.1,DNS:localhost\n"
                        "basicConstraints=CA:FALSE\n"
                        "keyUsage=critical,digitalSignature\n"
                        "extendedKeyUsage=serverAuth\n";
  openssl({"x509", "-req", "-in", path("server.csr"), "-CA", path("ca.pem"), "-CAkey",
           path("ca.key"), "-CAcreateserial", "-out", path("server.pem"), "-days", "2", "-extfile",
           ext});
  return {path("ca.pem"), path("server.pem"), path("server.key"), path("other-ca.pem")};
}

}  // namespace hpsearch::testing
