// dashboard_bench [--trials N] [--epochs E]: how long the dashboard takes to answer for a large
// study. Writes a results database with one study of N complete trials (default 1,000) x E epochs
// (10) and four searched parameters, starts the dashboard over it (server/dashboard/) and times,
// over loopback, GET / and GET /api/studies and GET /api/study?id=ID (the study with its trials and
// every SVG chart: what the page draws), five times each, printing the median and the answer's
// size. The budget is the whole page drawn within 1 s of the request.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include "CLI/CLI.hpp"
#include "db/results_store.h"
#include "httplib.h"
#include "nlohmann/json.hpp"
#include "server/dashboard/dashboard_server.h"
#include "server/dashboard/dashboard_views.h"

namespace {

using namespace hpsearch;
namespace fs = std::filesystem;

v1::ParameterSpec* Param(v1::StudySpec* spec, const std::string& name) {
  v1::ParameterSpec* p = spec->add_search_space();
  p->set_name(name);
  return p;
}

int Fill(db::ResultsStore* store, int n_trials, int n_epochs) {
  v1::Study study;
  study.set_id("st-bench");
  study.set_state(v1::STUDY_STATE_COMPLETE);
  study.set_created_unix_ms(1'700'000'000'000);
  study.set_ended_unix_ms(1'700'000'000'000 + int64_t{n_trials} * 60'000);
  v1::StudySpec* spec = study.mutable_spec();
  spec->set_name("bench");
  spec->mutable_objective()->set_metric("val_accuracy");
  spec->mutable_objective()->set_direction(v1::DIRECTION_MAXIMIZE);
  spec->mutable_budget()->set_n_trials(n_trials);
  spec->mutable_budget()->set_parallelism(8);
  v1::ParameterSpec* lr = Param(spec, "learning_rate");
  lr->mutable_float_range()->set_low(1e-5);
  lr->mutable_float_range()->set_high(1e-2);
  lr->mutable_float_range()->set_log(true);
  v1::ParameterSpec* wd = Param(spec, "weight_decay");
  wd->mutable_float_range()->set_low(0);
  wd->mutable_float_range()->set_high(0.1);
  v1::ParameterSpec* epochs = Param(spec, "epochs");
  epochs->mutable_int_range()->set_low(1);
  epochs->mutable_int_range()->set_high(10);
  v1::ParameterSpec* batch = Param(spec, "batch_size");
  for (int b : {8, 16, 32}) batch->mutable_categorical()->add_choices()->set_int_value(b);
  if (!store->PutStudy(study).ok()) return 1;
  std::mt19937_64 rng(7);
  std::uniform_real_distribution<double> u(0, 1);
  for (int n = 0; n < n_trials; ++n) {
    v1::Trial trial;
    trial.set_study_id(study.id());
    trial.set_number(n);
    trial.set_kind(v1::TRIAL_KIND_SEARCH);
    trial.set_state(v1::TRIAL_STATE_WAITING);
    trial.set_attempt(1);
    trial.set_source_trial_number(-1);
    trial.set_created_unix_ms(study.created_unix_ms() + n * 60'000);
    auto add = [&](const std::string& name) {
      v1::ParamAssignment* a = trial.add_params();
      a->set_name(name);
      return a->mutable_value();
    };
    add("learning_rate")->set_double_value(std::pow(10.0, -5 + 3 * u(rng)));
    add("weight_decay")->set_double_value(0.1 * u(rng));
    add("epochs")->set_int_value(1 + static_cast<int>(u(rng) * 10) % 10);
    add("batch_size")->set_int_value(8 << (static_cast<int>(u(rng) * 3) % 3));
    absl::StatusOr<int64_t> id = store->InsertTrial(trial);
    if (!id.ok()) return 1;
    const std::string lease = "lease-" + std::to_string(n);
    v1::TrialAttempt attempt;
    attempt.set_attempt(1);
    attempt.set_state(v1::TRIAL_STATE_RUNNING);
    attempt.set_worker_id("w");
    attempt.set_started_unix_ms(trial.created_unix_ms());
    if (!store->PutAttempt(*id, attempt, lease).ok()) return 1;
    const double quality = u(rng);
    double accuracy = 0;
    for (int e = 1; e <= n_epochs; ++e) {
      v1::EpochMetrics m;
      m.set_epoch(e);
      accuracy = quality * (1 - std::exp(-0.4 * e));
      m.set_train_loss(2.0 / e);
      m.set_val_loss(2.2 / e);
      m.set_val_accuracy(accuracy);
      m.set_val_f1(accuracy - 0.01);
      if (!store->InsertEpoch(*id, 1, lease, m, trial.created_unix_ms() + e * 1000).ok()) return 1;
    }
    attempt.set_state(v1::TRIAL_STATE_COMPLETE);
    attempt.set_ended_unix_ms(trial.created_unix_ms() + 50'000);
    if (!store->PutAttempt(*id, attempt, lease, db::LeaseEnd::kWorker).ok()) return 1;
    trial.set_state(v1::TRIAL_STATE_COMPLETE);
    trial.set_objective_value(accuracy);
    trial.set_worker_id("w");
    trial.set_started_unix_ms(trial.created_unix_ms());
    trial.set_ended_unix_ms(trial.created_unix_ms() + 50'000);
    if (!store->UpdateTrial(*id, trial, "", 0).ok()) return 1;
  }
  return store->SyncAll().ok() ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"dashboard_bench: the dashboard's answer times for a large study"};
  int n_trials = 1000;
  int n_epochs = 10;
  app.add_option("--trials", n_trials, "Complete trials in the study")->capture_default_str();
  app.add_option("--epochs", n_epochs, "Epochs per trial")->capture_default_str();
  std::string keep;
  app.add_option("--keep", keep, "Write the database to this file and keep it (for a browser)");
  CLI11_PARSE(app, argc, argv);

  const fs::path dir =
      fs::temp_directory_path() / ("dashboard_bench_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  const std::string path = keep.empty() ? (dir / "results.db").string() : keep;
  {
    absl::StatusOr<std::unique_ptr<db::ResultsStore>> store = db::ResultsStore::Open(path, {});
    if (!store.ok() || Fill(store->get(), n_trials, n_epochs) != 0) {
      std::fprintf(stderr, "dashboard_bench: cannot write %s\n", path.c_str());
      return 1;
    }
  }
  {
    // The two halves of an answer: reading the study, and building its document with the charts.
    db::DatabaseOptions read_only;
    read_only.read_only = true;
    auto reader = db::ResultsStore::Open(path, read_only);
    const auto t0 = std::chrono::steady_clock::now();
    absl::StatusOr<db::StoredStudy> study = (*reader)->LoadStudy("st-bench");
    const auto t1 = std::chrono::steady_clock::now();
    const std::string body = dashboard::StudyView(*study, absl::Now()).dump();
    const auto t2 = std::chrono::steady_clock::now();
    std::printf("LoadStudy %.1f ms, StudyView + dump %.1f ms (one run)\n",
                std::chrono::duration<double, std::milli>(t1 - t0).count(),
                std::chrono::duration<double, std::milli>(t2 - t1).count());
  }
  dashboard::DashboardOptions options;
  options.db_path = path;
  absl::StatusOr<std::unique_ptr<dashboard::DashboardServer>> server =
      dashboard::DashboardServer::Start(options);
  if (!server.ok()) {
    std::fprintf(stderr, "dashboard_bench: %s\n", std::string(server.status().message()).c_str());
    return 1;
  }
  httplib::Client client("127.0.0.1", (*server)->port());
  client.set_read_timeout(60, 0);
  std::printf(
      "study of %d trials x %d epochs, 4 parameters; 5 requests each over loopback (the\n"
      "dashboard keeps an unchanged study's document: the first request draws it)\n",
      n_trials, n_epochs);
  for (const std::string& target :
       {std::string("/"), std::string("/api/studies"), std::string("/api/study?id=st-bench")}) {
    std::vector<double> ms;
    size_t bytes = 0;
    for (int i = 0; i < 5; ++i) {
      const auto start = std::chrono::steady_clock::now();
      httplib::Result result = client.Get(target.c_str());
      const auto end = std::chrono::steady_clock::now();
      if (!result || result->status != 200) {
        std::fprintf(stderr, "dashboard_bench: GET %s failed\n", target.c_str());
        return 1;
      }
      bytes = result->body.size();
      ms.push_back(std::chrono::duration<double, std::milli>(end - start).count());
    }
    const double first = ms[0];
    std::sort(ms.begin() + 1, ms.end());
    std::printf("GET %-24s first %8.1f ms, then median %8.1f ms  %9zu bytes\n", target.c_str(),
                first, (ms[2] + ms[3]) / 2, bytes);
    if (target.rfind("/api/study?", 0) == 0) {
      const nlohmann::json study = nlohmann::json::parse(client.Get(target.c_str())->body);
      std::printf("  trials: %zu bytes\n", study["trials"].dump().size());
      for (const nlohmann::json& chart : study["charts"]) {
        std::printf("  chart %-24s %9zu bytes\n", chart["id"].get<std::string>().c_str(),
                    chart["svg"].get<std::string>().size());
      }
    }
  }
  (*server)->Stop();
  fs::remove_all(dir);
  return 0;
}
