// DashboardServer: the web dashboard of a results database (`hpsearch dashboard`, and inside
// `hpsearch run` and `hpsearch serve`). It serves one page and its script (dashboard_page.h) and
// two JSON documents the page polls (dashboard_views.h):
//   GET /                      the page
//   GET /dashboard.js          its script
//   GET /api/studies           every study's summary
//   GET /api/study?id=ID       one study (id or name) with its trials and SVG charts
//   GET /api/artifact?study=ID&file=NAME   a file of the final trial's stored adapter (download)
// Anything else is 404; a query the endpoint does not take, or a missing id, is 400; an unknown
// study is 404. Errors are JSON {"error": "..."} saying what was wrong.
//
// The database is opened read-only (SQLITE_OPEN_READONLY, no migration, no lock file), so it runs
// beside a coordinator writing the file and on a finished study's file copied elsewhere, and never
// changes it. A file of an older schema version (one this release can migrate) is read through a
// copy migrated in memory, taken again whenever the file changes.
//
// Listening beyond loopback needs both the coordinator's auth token and TLS (the same token and
// certificate as the gRPC API, docs/security.md): a browser without the token gets a form asking
// for it once, after which it travels in an HttpOnly, Secure, SameSite=Strict cookie; scripts may
// send `Authorization: Bearer TOKEN` instead. On loopback neither is required (a token, when
// given, is still checked).
//
// Thread-safety: Start() and Stop() from one thread; requests are served on the server's own
// threads, which share the read-only store (ResultsStore is thread-safe).
#pragma once

#include <map>
#include <memory>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "nlohmann/json.hpp"

namespace httplib {
class Server;
}

namespace hpsearch::db {
class ResultsStore;
}

namespace hpsearch::dashboard {

struct DashboardOptions {
  // The results database: an existing hpsearch results file of this release's schema version or
  // an older one.
  std::string db_path;
  // host:port; port 0 picks a free port. Beyond loopback, auth_token and TLS are required.
  std::string listen = "127.0.0.1:0";
  // The coordinator's shared secret (its content, not the file); empty: none required.
  std::string auth_token;
  // PEM certificate chain and key; both set: HTTPS; both empty: HTTP.
  std::string tls_cert_file;
  std::string tls_key_file;
};

// The listen address (HOST:PORT, port 0 to 65535) and, beyond loopback, the token and both TLS
// files; INVALID_ARGUMENT naming the fix. Start() checks it too; a command checks it first so
// that bad settings stop it before it writes anything.
absl::Status CheckDashboardOptions(const DashboardOptions& options);

class DashboardServer {
 public:
  // Opens the database, binds, and starts serving on a thread of its own. Errors: the database
  // cannot be opened (NOT_FOUND, FAILED_PRECONDITION), a non-loopback address without a token or
  // TLS, or one TLS file without the other (INVALID_ARGUMENT), the address cannot be bound
  // (UNAVAILABLE).
  static absl::StatusOr<std::unique_ptr<DashboardServer>> Start(const DashboardOptions& options);
  ~DashboardServer();  // Stop()s
  DashboardServer(const DashboardServer&) = delete;
  DashboardServer& operator=(const DashboardServer&) = delete;

  int port() const { return port_; }
  // http(s)://HOST:PORT/ as a browser dials it (a wildcard address is shown as this host's name).
  const std::string& url() const { return url_; }
  // Stops listening and waits for the serving thread. Idempotent.
  void Stop();

 private:
  DashboardServer() = default;
  void Route();

  // The last document of each study, by a fingerprint of what it was drawn from: a page polling a
  // study that has not changed costs a database read, not the charts again (a 1,000-trial study's
  // charts take seconds to draw). Kept as JSON text: the document's members other than the
  // summary's (StudySummary, answered fresh each time), without the enclosing braces, so an answer
  // is the summary's text and this one spliced, not a copy of the document dumped again.
  struct CachedView {
    size_t fingerprint = 0;
    std::shared_ptr<const std::string> view;
  };
  std::shared_ptr<const std::string> CachedStudyView(size_t fingerprint, const std::string& id);
  void CacheStudyView(size_t fingerprint, const std::string& id,
                      std::shared_ptr<const std::string> view);
  absl::Mutex cache_mu_;
  std::map<std::string, CachedView> cache_ ABSL_GUARDED_BY(cache_mu_);

  // The store the handlers read. A file of an older schema version is read through an in-memory
  // copy migrated at open (db::ResultsStore::Open); the copy is taken again whenever the file
  // changes, so the page stays live beside an older coordinator and the file is never migrated.
  std::shared_ptr<db::ResultsStore> Store();
  absl::Mutex store_mu_;
  std::shared_ptr<db::ResultsStore> store_ ABSL_GUARDED_BY(store_mu_);
  std::string store_stamp_ ABSL_GUARDED_BY(store_mu_);  // the file's when store_ was copied

  DashboardOptions options_;
  std::unique_ptr<httplib::Server> server_;
  std::thread thread_;
  int port_ = 0;
  std::string url_;
};

}  // namespace hpsearch::dashboard
