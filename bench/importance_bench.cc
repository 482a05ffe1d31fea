// importance_bench [--ours-only] [--quick]: parameter importance (server/report/importance.h) on
// synthetic studies whose importances are known, beside Optuna 3.1's FanovaImportanceEvaluator on
// the same trials (bench/peer/optuna_importance.py, Debian's /usr/bin/python3), with the time of
// each; then the time to draw the report's pictures for a study of 1,000 trials x 10 epochs.
// --quick: the first study and 100 trials only (the ctest smoke run).
//
// Optuna's evaluator judges a log parameter in linear space (it does not log-transform); hpsearch
// judges it in log space, where the sampler draws it uniformly, so the log case differs by design.
#include <chrono>
#include <cmath>
#include <cstring>
#include <functional>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <random>

#include "absl/strings/str_format.h"
#include "bench/python_peer.h"
#include "server/report/importance.h"
#include "server/report/study_report.h"

namespace hpsearch::bench {
namespace {

using Values = std::map<std::string, v1::ParamValue>;
using Clock = std::chrono::steady_clock;

double Seconds(Clock::time_point since) {
  return std::chrono::duration<double>(Clock::now() - since).count();
}

v1::ParameterSpec Float(const std::string& name, double low, double high, bool log = false) {
  v1::ParameterSpec p;
  p.set_name(name);
  p.mutable_float_range()->set_low(low);
  p.mutable_float_range()->set_high(high);
  p.mutable_float_range()->set_log(log);
  return p;
}

v1::ParameterSpec Int(const std::string& name, int64_t low, int64_t high) {
  v1::ParameterSpec p;
  p.set_name(name);
  p.mutable_int_range()->set_low(low);
  p.mutable_int_range()->set_high(high);
  return p;
}

v1::ParameterSpec Choice(const std::string& name, const std::vector<std::string>& choices) {
  v1::ParameterSpec p;
  p.set_name(name);
  for (const std::string& c : choices) p.mutable_categorical()->add_choices()->set_string_value(c);
  return p;
}

double Num(const v1::ParamValue& v) {
  return v.kind_case() == v1::ParamValue::kIntValue ? static_cast<double>(v.int_value())
                                                    : v.double_value();
}

struct Case {
  std::string name;
  v1::StudySpec spec;
  int n_trials;
  std::function<double(const Values&)> objective;
  std::string expected;  // the true first-order shares, in words
};

std::vector<v1::Trial> Draw(const Case& c, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  std::vector<v1::Trial> trials;
  for (int i = 0; i < c.n_trials; ++i) {
    v1::Trial t;
    t.set_number(i);
    t.set_kind(v1::TRIAL_KIND_SEARCH);
    t.set_state(v1::TRIAL_STATE_COMPLETE);
    Values values;
    for (const v1::ParameterSpec& p : c.spec.search_space()) {
      v1::ParamValue v;
      if (p.has_float_range()) {
        const auto& r = p.float_range();
        v.set_double_value(r.log() ? std::exp(std::log(r.low()) +
                                              unit(rng) * (std::log(r.high()) - std::log(r.low())))
                                   : r.low() + unit(rng) * (r.high() - r.low()));
      } else if (p.has_int_range()) {
        std::uniform_int_distribution<int64_t> pick(p.int_range().low(), p.int_range().high());
        v.set_int_value(pick(rng));
      } else {
        std::uniform_int_distribution<int> pick(0, p.categorical().choices_size() - 1);
        v = p.categorical().choices(pick(rng));
      }
      values[p.name()] = v;
      auto* a = t.add_params();
      a->set_name(p.name());
      *a->mutable_value() = v;
    }
    t.set_objective_value(c.objective(values));
    trials.push_back(std::move(t));
  }
  return trials;
}

nlohmann::json PeerRequest(const Case& c, const std::vector<v1::Trial>& trials) {
  nlohmann::json space = nlohmann::json::array();
  for (const v1::ParameterSpec& p : c.spec.search_space()) {
    nlohmann::json e{{"name", p.name()}};
    if (p.has_float_range()) {
      e.update({{"type", "float"},
                {"low", p.float_range().low()},
                {"high", p.float_range().high()},
                {"log", p.float_range().log()}});
    } else if (p.has_int_range()) {
      e.update({{"type", "int"}, {"low", p.int_range().low()}, {"high", p.int_range().high()}});
    } else {
      std::vector<std::string> choices;
      for (const auto& v : p.categorical().choices()) choices.push_back(v.string_value());
      e.update({{"type", "categorical"}, {"choices", choices}});
    }
    space.push_back(e);
  }
  nlohmann::json rows = nlohmann::json::array();
  for (const v1::Trial& t : trials) {
    nlohmann::json params = nlohmann::json::object();
    for (const auto& a : t.params()) {
      if (a.value().kind_case() == v1::ParamValue::kStringValue) {
        params[a.name()] = a.value().string_value();
      } else if (a.value().kind_case() == v1::ParamValue::kIntValue) {
        params[a.name()] = a.value().int_value();
      } else {
        params[a.name()] = a.value().double_value();
      }
    }
    rows.push_back({{"params", params}, {"value", t.objective_value()}});
  }
  return {{"space", space}, {"trials", rows}, {"seed", 0}};
}

std::vector<Case> Cases() {
  std::vector<Case> cases;
  auto ten_x1 = [](const Values& v) { return 10 * Num(v.at("x1")) + Num(v.at("x2")); };
  for (int n : {100, 400}) {
    Case c{absl::StrFormat("10*x1 + x2, x3 unused, %d trials", n),
           {},
           n,
           ten_x1,
           "x1 0.990, x2 0.010, x3 0"};
    *c.spec.add_search_space() = Float("x1", 0, 1);
    *c.spec.add_search_space() = Float("x2", 0, 1);
    *c.spec.add_search_space() = Float("x3", 0, 1);
    cases.push_back(c);
  }
  Case log{"log10(lr) + 4*y, lr log-uniform 1e-5..0.1, 150 trials",
           {},
           150,
           [](const Values& v) { return std::log10(Num(v.at("lr"))) + 4 * Num(v.at("y")); },
           "in log space lr 0.5, y 0.5"};
  *log.spec.add_search_space() = Float("lr", 1e-5, 1e-1, true);
  *log.spec.add_search_space() = Float("y", 0, 1);
  cases.push_back(log);
  Case cat{"optimizer {0, 5, 1} + 0.5*epochs, noise unused, 90 trials",
           {},
           90,
           [](const Values& v) {
             const std::string& o = v.at("optimizer").string_value();
             return (o == "sgd" ? 5.0 : o == "adamw" ? 1.0 : 0.0) + 0.5 * Num(v.at("epochs"));
           },
           "optimizer 0.966, epochs 0.034, noise 0"};
  *cat.spec.add_search_space() = Choice("optimizer", {"adam", "sgd", "adamw"});
  *cat.spec.add_search_space() = Int("epochs", 1, 3);
  *cat.spec.add_search_space() = Float("noise", 0, 1);
  cases.push_back(cat);
  Case big{
      "10*a + 3*b + c, d and e unused, 1000 trials",
      {},
      1000,
      [](const Values& v) { return 10 * Num(v.at("a")) + 3 * Num(v.at("b")) + Num(v.at("c")); },
      "a 0.909, b 0.082, c 0.009, d 0, e 0"};
  for (const char* name : {"a", "b", "c", "d", "e"})
    *big.spec.add_search_space() = Float(name, 0, 1);
  cases.push_back(big);
  return cases;
}

// A study of `n` search trials x `epochs` epochs, for the drawing times.
std::pair<v1::Study, std::vector<v1::Trial>> BigStudy(int n, int epochs) {
  Case c{"", {}, n, nullptr, ""};
  *c.spec.add_search_space() = Float("learning_rate", 1e-5, 3e-3, true);
  *c.spec.add_search_space() = Int("epochs", 1, 10);
  *c.spec.add_search_space() = Choice("batch_size", {"8", "16", "32"});
  *c.spec.add_search_space() = Float("weight_decay", 0, 0.1);
  *c.spec.add_search_space() = Int("warmup_steps", 0, 500);
  c.objective = [](const Values& v) {
    return 0.9 - 0.05 * std::abs(std::log10(Num(v.at("learning_rate"))) + 3.5) +
           0.002 * Num(v.at("epochs"));
  };
  v1::Study study;
  study.set_id("st-bench");
  *study.mutable_spec() = c.spec;
  study.mutable_spec()->set_name("bench");
  study.mutable_spec()->mutable_objective()->set_metric("val_accuracy");
  study.mutable_spec()->mutable_objective()->set_direction(v1::DIRECTION_MAXIMIZE);
  std::vector<v1::Trial> trials = Draw(c, 3);
  for (v1::Trial& t : trials) {
    for (int e = 1; e <= epochs; ++e) {
      v1::EpochMetrics* m = t.add_epochs();
      m->set_epoch(e);
      m->set_val_accuracy(t.objective_value() - 0.01 * (epochs - e));
      m->set_val_f1(m->val_accuracy() - 0.01);
      m->set_train_loss(2.0 / e);
      m->set_val_loss(2.2 / e);
    }
  }
  return {study, trials};
}

int Main(int argc, char** argv) {
  bool ours_only = false, quick = false;
  for (int i = 1; i < argc; ++i) {
    ours_only = ours_only || std::strcmp(argv[i], "--ours-only") == 0;
    quick = quick || std::strcmp(argv[i], "--quick") == 0;
  }
  std::unique_ptr<PythonPeer> peer;
  if (!ours_only) {
    peer = std::make_unique<PythonPeer>(std::string(HPSEARCH_SOURCE_DIR) +
                                        "/bench/peer/optuna_importance.py");
  }
  std::vector<Case> cases = Cases();
  if (quick) cases.resize(1);
  for (const Case& c : cases) {
    const std::vector<v1::Trial> trials = Draw(c, 7);
    const auto start = Clock::now();
    absl::StatusOr<server::StudyImportance> ours =
        server::ComputeParameterImportance(c.spec, trials);
    const double ours_seconds = Seconds(start);
    if (!ours.ok()) {
      std::cerr << c.name << ": " << ours.status() << "\n";
      return 1;
    }
    std::cout << c.name << "\n  true shares: " << c.expected << "\n  hpsearch ("
              << absl::StrFormat("%.3f s", ours_seconds) << "):";
    for (const server::ParameterImportance& p : ours->parameters) {
      std::cout << absl::StrFormat(" %s %.4f", p.name, p.importance);
    }
    std::cout << "\n";
    if (peer) {
      nlohmann::json answer = nlohmann::json::parse(peer->Call(PeerRequest(c, trials).dump()));
      std::cout << "  optuna 3.1 (" << absl::StrFormat("%.3f s", answer["seconds"].get<double>())
                << "):";
      for (const server::ParameterImportance& p : ours->parameters) {
        std::cout << absl::StrFormat(" %s %.4f", p.name,
                                     answer["importances"][p.name].get<double>());
      }
      std::cout << "\n";
    }
  }
  for (int n : {100, 1000}) {
    if (quick && n > 100) break;
    auto [study, trials] = BigStudy(n, 10);
    auto start = Clock::now();
    absl::StatusOr<server::StudyImportance> importance =
        server::ComputeParameterImportance(study.spec(), trials);
    const double importance_seconds = Seconds(start);
    start = Clock::now();
    std::vector<server::ReportFigure> parameters = server::ParameterFigures(study, trials);
    const double parameters_seconds = Seconds(start);
    start = Clock::now();
    server::ReportFigure history = server::OptimizationHistoryFigure(study, trials);
    const double history_seconds = Seconds(start);
    start = Clock::now();
    server::ReportFigure curves = server::LearningCurvesFigure(study, trials);
    const double curves_seconds = Seconds(start);
    start = Clock::now();
    server::StudyReport report = server::BuildStudyReport(study, trials);
    const double report_seconds = Seconds(start);
    std::cout << absl::StrFormat(
        "%d trials x 10 epochs, 5 parameters: importance %.3f s, 5 parameter plots %.3f s, "
        "history %.3f s, learning curves %.3f s, whole report (%d pictures) %.3f s\n",
        n, importance_seconds, parameters_seconds, history_seconds, curves_seconds,
        static_cast<int>(report.figures.size()), report_seconds);
  }
  return 0;
}

}  // namespace
}  // namespace hpsearch::bench

int main(int argc, char** argv) { return hpsearch::bench::Main(argc, argv); }
