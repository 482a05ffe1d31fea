#include "server/dashboard/dashboard_server.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <set>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "db/results_store.h"
#include "httplib.h"
#include "rpc/auth_token.h"
#include "rpc/security.h"
#include "server/dashboard/dashboard_page.h"
#include "server/dashboard/dashboard_views.h"
#include "zlib.h"

namespace hpsearch::dashboard {
namespace {

constexpr char kTokenCookie[] = "hpsearch_token";

// "; charset=utf-8" keeps cpp-httplib from compressing the answer itself: Debian's build prefers
// brotli at its top quality, which took 15 s for a 1,000-trial study's 4.6 MB (SendLargeJson
// compresses with zlib's fastest level instead).
constexpr char kJsonType[] = "application/json; charset=utf-8";

void SendJson(httplib::Response& res, int status, const nlohmann::json& body) {
  res.status = status;
  res.set_header("Cache-Control", "no-store");
  res.set_content(body.dump(), kJsonType);
}

// gzip (zlib level 1: ~5x smaller for the charts' SVG, tens of ms) when the client takes it.
void SendLargeJson(const httplib::Request& req, httplib::Response& res, std::string text) {
  res.status = 200;
  res.set_header("Cache-Control", "no-store");
  if (text.size() < 1024 ||
      req.get_header_value("Accept-Encoding").find("gzip") == std::string::npos) {
    res.set_content(std::move(text), kJsonType);
    return;
  }
  z_stream zs{};
  if (deflateInit2(&zs, 1, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) {
    res.set_content(std::move(text), kJsonType);
    return;
  }
  std::string packed(deflateBound(&zs, text.size()), '\0');
  zs.next_in = reinterpret_cast<Bytef*>(text.data());
  zs.avail_in = static_cast<uInt>(text.size());
  zs.next_out = reinterpret_cast<Bytef*>(packed.data());
  zs.avail_out = static_cast<uInt>(packed.size());
  const int rc = deflate(&zs, Z_FINISH);
  packed.resize(zs.total_out);
  deflateEnd(&zs);
  if (rc != Z_STREAM_END) {
    res.set_content(std::move(text), kJsonType);
    return;
  }
  res.set_header("Content-Encoding", "gzip");
  res.set_header("Vary", "Accept-Encoding");
  res.set_content(std::move(packed), kJsonType);
}

void SendError(httplib::Response& res, int status, const std::string& message) {
  SendJson(res, status, nlohmann::json{{"error", message}});
}

// Refuses query parameters other than `allowed`, and repeated ones. Returns false after answering.
bool CheckQuery(const httplib::Request& req, httplib::Response& res,
                const std::set<std::string>& allowed) {
  std::map<std::string, int> seen;
  for (const auto& [key, value] : req.params) {
    if (allowed.count(key) == 0) {
      std::string names;
      for (const std::string& a : allowed) absl::StrAppend(&names, names.empty() ? "" : ", ", a);
      SendError(res, 400,
                absl::StrCat("malformed query: ", req.path, " takes no parameter '", key, "'",
                             allowed.empty() ? "" : absl::StrCat(" (it takes: ", names, ")")));
      return false;
    }
    if (++seen[key] > 1) {
      SendError(res, 400, absl::StrCat("malformed query: parameter '", key, "' given twice"));
      return false;
    }
  }
  return true;
}

std::string CookieValue(const httplib::Request& req, const std::string& name) {
  if (!req.has_header("Cookie")) return "";
  for (absl::string_view part : absl::StrSplit(req.get_header_value("Cookie"), ';')) {
    part = absl::StripAsciiWhitespace(part);
    if (absl::StartsWith(part, name + "=")) return std::string(part.substr(name.size() + 1));
  }
  return "";
}

std::string LoginPage(const std::string& message) {
  return absl::StrCat(
      "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>hpsearch dashboard: "
      "token</title></head><body style=\"font-family:sans-serif;margin:2em\"><h1>hpsearch "
      "dashboard</h1><p>This dashboard needs the coordinator's auth token (the content of its "
      "--auth-token-file, docs/security.md). It is kept in a cookie of this browser.</p>",
      message.empty() ? "" : absl::StrCat("<p style=\"color:#b00020\">", message, "</p>"),
      "<form method=\"post\" action=\"login\"><input type=\"password\" name=\"token\" "
      "size=\"70\" autofocus> <button type=\"submit\">Open</button></form></body></html>");
}

// The modification times and sizes of a database file and its write-ahead log.
std::string FileStamp(const std::string& path) {
  std::string stamp;
  for (const std::string& name : {path, path + "-wal"}) {
    struct stat st {};
    if (::stat(name.c_str(), &st) == 0) {
      absl::StrAppend(&stamp, st.st_mtim.tv_sec, ".", st.st_mtim.tv_nsec, ":", st.st_size, ";");
    } else {
      stamp += "-;";
    }
  }
  return stamp;
}

// The final trial's stored adapter, if the study has a final trial with one.
std::optional<db::ArtifactRecord> FinalArtifact(db::ResultsStore* store,
                                                const db::StoredStudy& study) {
  for (const db::StoredTrial& t : study.trials) {
    if (t.trial.kind() != v1::TRIAL_KIND_FINAL) continue;
    absl::StatusOr<std::optional<db::ArtifactRecord>> record = store->LoadArtifact(t.trial_id);
    if (record.ok() && record->has_value()) return **record;
  }
  return std::nullopt;
}

std::string HostOf(const std::string& listen) {
  std::string host = listen.substr(0, listen.rfind(':'));
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  return host;
}

}  // namespace

namespace {

// The port of HOST:PORT, when it is one from 0 to 65535.
std::optional<int> ListenPort(const std::string& listen) {
  const size_t colon = listen.rfind(':');
  int port = -1;
  if (colon == std::string::npos || colon == 0 ||
      !absl::SimpleAtoi(listen.substr(colon + 1), &port) || port < 0 || port > 65535) {
    return std::nullopt;
  }
  return port;
}

}  // namespace

absl::Status CheckDashboardOptions(const DashboardOptions& options) {
  if (!ListenPort(options.listen)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--listen '", options.listen, "' is not HOST:PORT with a port from 0 (any free) to 65535"));
  }
  const bool tls = !options.tls_cert_file.empty() || !options.tls_key_file.empty();
  if (tls && (options.tls_cert_file.empty() || options.tls_key_file.empty())) {
    return absl::InvalidArgumentError(
        "the dashboard's TLS needs both a certificate and its key (--tls-cert and --tls-key)");
  }
  if (!rpc::IsLoopbackListenAddress(options.listen) && (!tls || options.auth_token.empty())) {
    return absl::InvalidArgumentError(absl::StrCat(
        "the dashboard listens on ", options.listen,
        " beyond this machine only with the coordinator's auth token and TLS: pass "
        "--auth-token-file FILE --tls-cert CERT --tls-key KEY to `hpsearch dashboard` (to "
        "`hpsearch "
        "run`: --dashboard-auth-token-file, --dashboard-tls-cert, --dashboard-tls-key; `hpsearch "
        "serve` lends its own), see docs/security.md; or listen on 127.0.0.1 (reach it with "
        "`ssh -L PORT:127.0.0.1:PORT host`)"));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<DashboardServer>> DashboardServer::Start(
    const DashboardOptions& options) {
  if (absl::Status checked = CheckDashboardOptions(options); !checked.ok()) return checked;
  int port = ListenPort(options.listen).value_or(-1);
  const bool tls = !options.tls_cert_file.empty();
  std::unique_ptr<DashboardServer> dashboard(new DashboardServer());
  dashboard->options_ = options;
  db::DatabaseOptions db_options;
  db_options.read_only = true;
  if (::access(options.db_path.c_str(), R_OK) != 0) {
    return absl::NotFoundError(
        absl::StrCat("cannot read the results database ", options.db_path, " (--db)"));
  }
  absl::StatusOr<std::unique_ptr<db::ResultsStore>> store =
      db::ResultsStore::Open(options.db_path, db_options);
  if (!store.ok()) return store.status();
  {
    absl::MutexLock lock(&dashboard->store_mu_);
    dashboard->store_stamp_ = FileStamp(options.db_path);
    dashboard->store_ = std::move(*store);
  }
  if (tls) {
    auto ssl = std::make_unique<httplib::SSLServer>(options.tls_cert_file.c_str(),
                                                    options.tls_key_file.c_str());
    if (!ssl->is_valid()) {
      return absl::InvalidArgumentError(
          absl::StrCat("cannot serve TLS with --tls-cert ", options.tls_cert_file,
                       " and --tls-key ", options.tls_key_file,
                       " (unreadable, not PEM, or a key that does not match the certificate)"));
    }
    dashboard->server_ = std::move(ssl);
  } else {
    dashboard->server_ = std::make_unique<httplib::Server>();
  }
  dashboard->Route();
  const std::string host = HostOf(options.listen);
  if (port == 0) {
    port = dashboard->server_->bind_to_any_port(host);
  } else if (!dashboard->server_->bind_to_port(host, port)) {
    port = -1;
  }
  if (port <= 0) {
    return absl::UnavailableError(
        absl::StrCat("the dashboard cannot listen on ", options.listen,
                     " (the port is taken, or the address is not this machine's)"));
  }
  dashboard->port_ = port;
  std::string shown = host;
  if (host == "0.0.0.0" || host == "::" || host.empty()) {
    char name[256] = {};
    shown = ::gethostname(name, sizeof(name) - 1) == 0 ? name : "localhost";
  }
  if (shown.find(':') != std::string::npos) shown = absl::StrCat("[", shown, "]");
  dashboard->url_ = absl::StrCat(tls ? "https" : "http", "://", shown, ":", port, "/");
  httplib::Server* server = dashboard->server_.get();
  dashboard->thread_ = std::thread([server] { server->listen_after_bind(); });
  return dashboard;
}

DashboardServer::~DashboardServer() { Stop(); }

std::shared_ptr<db::ResultsStore> DashboardServer::Store() {
  absl::MutexLock lock(&store_mu_);
  if (store_->copied_from_version() == 0) return store_;  // reads the live file itself
  const std::string stamp = FileStamp(options_.db_path);
  if (stamp == store_stamp_) return store_;
  db::DatabaseOptions db_options;
  db_options.read_only = true;
  absl::StatusOr<std::unique_ptr<db::ResultsStore>> fresh =
      db::ResultsStore::Open(options_.db_path, db_options);
  if (!fresh.ok()) return store_;  // keep showing the last copy; the next request tries again
  store_ = std::move(*fresh);
  store_stamp_ = stamp;
  return store_;
}

std::shared_ptr<const std::string> DashboardServer::CachedStudyView(size_t fingerprint,
                                                                    const std::string& id) {
  absl::MutexLock lock(&cache_mu_);
  auto it = cache_.find(id);
  if (it == cache_.end() || it->second.fingerprint != fingerprint) return nullptr;
  return it->second.view;
}

void DashboardServer::CacheStudyView(size_t fingerprint, const std::string& id,
                                     std::shared_ptr<const std::string> view) {
  absl::MutexLock lock(&cache_mu_);
  if (cache_.size() >= 16 && cache_.count(id) == 0) cache_.clear();  // a bound, not an LRU
  cache_[id] = {fingerprint, std::move(view)};
}

void DashboardServer::Stop() {
  if (server_) server_->stop();
  if (thread_.joinable()) thread_.join();
}

void DashboardServer::Route() {
  httplib::Server& s = *server_;
  const std::string token = options_.auth_token;
  // Every request but the login form's must carry the token when one is set.
  s.set_pre_routing_handler([token](const httplib::Request& req, httplib::Response& res) {
    res.set_header("X-Content-Type-Options", "nosniff");
    res.set_header("Content-Security-Policy",
                   "default-src 'none'; script-src 'self'; style-src 'unsafe-inline'; "
                   "img-src 'self' data:; connect-src 'self'; form-action 'self'");
    if (token.empty() || req.path == "/login") return httplib::Server::HandlerResponse::Unhandled;
    std::string given = CookieValue(req, kTokenCookie);
    const std::string bearer = req.get_header_value("Authorization");
    if (absl::StartsWith(bearer, rpc::kAuthScheme)) given = bearer.substr(strlen(rpc::kAuthScheme));
    if (!given.empty() && rpc::ConstantTimeEquals(token, given)) {
      return httplib::Server::HandlerResponse::Unhandled;
    }
    if (req.path == "/") {
      res.status = 401;
      res.set_content(LoginPage(given.empty() ? "" : "That token is not the coordinator's."),
                      "text/html; charset=utf-8");
    } else {
      SendError(res, 401,
                "this dashboard needs the coordinator's auth token: open / in a browser, or send "
                "'Authorization: Bearer TOKEN'");
    }
    return httplib::Server::HandlerResponse::Handled;
  });
  s.Post("/login", [token](const httplib::Request& req, httplib::Response& res) {
    const std::string given = req.get_param_value("token");
    if (token.empty() || (!given.empty() && rpc::ConstantTimeEquals(token, given))) {
      if (!token.empty()) {
        res.set_header("Set-Cookie", absl::StrCat(kTokenCookie, "=", given,
                                                  "; Path=/; HttpOnly; Secure; SameSite=Strict"));
      }
      res.status = 303;
      res.set_header("Location", "./");
      return;
    }
    res.status = 401;
    res.set_content(LoginPage("That token is not the coordinator's."), "text/html; charset=utf-8");
  });
  s.Get("/", [](const httplib::Request& req, httplib::Response& res) {
    if (!CheckQuery(req, res, {})) return;
    res.set_header("Cache-Control", "no-store");
    res.set_content(LivePage("dashboard.js"), "text/html; charset=utf-8");
  });
  s.Get("/dashboard.js", [](const httplib::Request& req, httplib::Response& res) {
    if (!CheckQuery(req, res, {})) return;
    res.set_content(kDashboardScript, "text/javascript; charset=utf-8");
  });
  DashboardServer* self = this;
  s.Get("/api/studies", [self](const httplib::Request& req, httplib::Response& res) {
    if (!CheckQuery(req, res, {})) return;
    std::shared_ptr<db::ResultsStore> store = self->Store();
    absl::StatusOr<std::vector<db::StoredStudy>> studies = store->LoadAll();
    if (!studies.ok()) {
      SendError(res, 500, absl::StrCat("reading the database: ", studies.status().message()));
      return;
    }
    SendLargeJson(req, res, StudiesView(*studies, absl::Now()).dump());
  });
  s.Get("/api/study", [self](const httplib::Request& req, httplib::Response& res) {
    if (!CheckQuery(req, res, {"id"})) return;
    std::shared_ptr<db::ResultsStore> store = self->Store();
    const std::string id = req.get_param_value("id");
    if (id.empty()) {
      SendError(res, 400, "malformed query: /api/study needs ?id=STUDY (a study id or name)");
      return;
    }
    absl::StatusOr<db::StoredStudy> study = store->LoadStudy(id);
    if (!study.ok()) {
      if (study.status().code() == absl::StatusCode::kNotFound) {
        SendError(res, 404, absl::StrCat("no study '", id, "' in this database"));
      } else {
        SendError(res, 500, absl::StrCat("reading the database: ", study.status().message()));
      }
      return;
    }
    std::optional<db::ArtifactRecord> artifact = FinalArtifact(store.get(), *study);
    std::string key = study->study.SerializeAsString();
    for (const db::StoredTrial& t : study->trials) key += t.trial.SerializeAsString();
    if (artifact) {
      for (const db::ArtifactFileRecord& f : artifact->files) key += f.name + f.sha256;
    }
    const size_t fingerprint = std::hash<std::string>()(key);
    const absl::Time now = absl::Now();
    const nlohmann::json summary = StudySummary(*study, now);  // its times move on: never kept
    std::shared_ptr<const std::string> rest = self->CachedStudyView(fingerprint, study->study.id());
    if (rest == nullptr) {
      nlohmann::json view = StudyView(*study, now, artifact ? &*artifact : nullptr);
      for (const auto& item : summary.items()) view.erase(item.key());
      const std::string text = view.dump();
      rest = std::make_shared<const std::string>(text.substr(1, text.size() - 2));  // no { }
      self->CacheStudyView(fingerprint, study->study.id(), rest);
    }
    std::string body = summary.dump();
    body.pop_back();  // its closing brace
    if (!rest->empty()) absl::StrAppend(&body, ",", *rest);
    body += '}';
    SendLargeJson(req, res, std::move(body));
  });
  // A file of the final trial's stored adapter: only names its artifact record lists are served.
  const std::string db_dir = std::filesystem::absolute(options_.db_path).parent_path().string();
  s.Get("/api/artifact", [self, db_dir](const httplib::Request& req, httplib::Response& res) {
    std::shared_ptr<db::ResultsStore> store = self->Store();
    if (!CheckQuery(req, res, {"study", "file"})) return;
    const std::string id = req.get_param_value("study");
    const std::string name = req.get_param_value("file");
    if (id.empty() || name.empty()) {
      SendError(res, 400, "malformed query: /api/artifact needs ?study=STUDY&file=NAME");
      return;
    }
    absl::StatusOr<db::StoredStudy> study = store->LoadStudy(id);
    if (!study.ok()) {
      SendError(res, 404, absl::StrCat("no study '", id, "' in this database"));
      return;
    }
    std::optional<db::ArtifactRecord> artifact = FinalArtifact(store.get(), *study);
    const db::ArtifactFileRecord* file = nullptr;
    if (artifact) {
      for (const db::ArtifactFileRecord& f : artifact->files) {
        if (f.name == name) file = &f;
      }
    }
    if (file == nullptr) {
      SendError(res, 404,
                absl::StrCat("study '", id, "' has no stored final adapter file '", name, "'"));
      return;
    }
    // As the coordinator stores it (server/artifact_service.h, ResolveArtifactDir): relative to
    // the database's folder, or absolute.
    std::filesystem::path dir(artifact->dir);
    if (dir.is_relative()) dir = std::filesystem::path(db_dir) / dir;
    auto in = std::make_shared<std::ifstream>(dir / file->name, std::ios::binary);
    if (!*in) {
      SendError(res, 404,
                absl::StrCat("the stored file ", (dir / file->name).string(),
                             " is missing (moved without its database?)"));
      return;
    }
    const std::string base = std::filesystem::path(file->name).filename().string();
    res.set_header("Content-Disposition", absl::StrCat("attachment; filename=\"", base, "\""));
    res.set_content_provider(static_cast<size_t>(file->bytes), "application/octet-stream",
                             [in](size_t offset, size_t length, httplib::DataSink& sink) {
                               std::vector<char> buffer(std::min<size_t>(length, 1 << 16));
                               in->seekg(static_cast<std::streamoff>(offset));
                               in->read(buffer.data(), static_cast<std::streamsize>(buffer.size()));
                               const std::streamsize got = in->gcount();
                               if (got <= 0) return false;
                               sink.write(buffer.data(), static_cast<size_t>(got));
                               return true;
                             });
  });
  s.set_error_handler([](const httplib::Request& req, httplib::Response& res) {
    if (res.status == 404 && res.body.empty()) {
      SendError(res, 404,
                absl::StrCat("no such page: ", req.path,
                             " (the dashboard serves /, /dashboard.js, /api/studies, "
                             "/api/study?id=STUDY and /api/artifact?study=STUDY&file=NAME)"));
    } else if (res.body.empty()) {
      SendError(res, res.status, absl::StrCat("HTTP ", res.status, " for ", req.path));
    }
  });
}

}  // namespace hpsearch::dashboard
