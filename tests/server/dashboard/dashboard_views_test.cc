// The dashboard's documents (server/dashboard/dashboard_views.h), the parallel-coordinates chart
// (server/report/dashboard_charts.h) and the frozen page (dashboard_page.h), on studies built in
// memory. The page in a browser, the HTTP server and the database are tests/dashboard/'s.
#include <catch2/catch.hpp>

#include <cmath>
#include <regex>
#include <set>
#include <sstream>
#include <string>

#include "server/dashboard/dashboard_page.h"
#include "server/dashboard/dashboard_views.h"
#include "server/report/dashboard_charts.h"
#include "server/report/report_charts.h"

namespace hpsearch {
namespace {

v1::Study MakeStudy(const std::string& name) {
  v1::Study study;
  study.set_id("st-1");
  study.set_state(v1::STUDY_STATE_SEARCHING);
  study.set_created_unix_ms(1'000'000);
  v1::StudySpec* spec = study.mutable_spec();
  spec->set_name(name);
  spec->mutable_objective()->set_metric("val_accuracy");
  spec->mutable_objective()->set_direction(v1::DIRECTION_MAXIMIZE);
  spec->mutable_budget()->set_n_trials(6);
  spec->mutable_budget()->set_parallelism(2);
  v1::ParameterSpec* lr = spec->add_search_space();
  lr->set_name("lr");
  lr->mutable_float_range()->set_low(1e-4);
  lr->mutable_float_range()->set_high(1e-2);
  lr->mutable_float_range()->set_log(true);
  v1::ParameterSpec* opt = spec->add_search_space();
  opt->set_name("opt");
  opt->mutable_categorical()->add_choices()->set_string_value("adam");
  opt->mutable_categorical()->add_choices()->set_string_value("sgd");
  return study;
}

v1::Trial MakeTrial(int number, double lr, const std::string& opt, v1::TrialState state,
                    std::vector<double> accuracies) {
  v1::Trial t;
  t.set_study_id("st-1");
  t.set_number(number);
  t.set_kind(v1::TRIAL_KIND_SEARCH);
  t.set_state(state);
  t.set_attempt(1);
  t.set_source_trial_number(-1);
  t.set_started_unix_ms(1'000'000 + number * 10'000);
  if (state == v1::TRIAL_STATE_COMPLETE) {
    t.set_ended_unix_ms(t.started_unix_ms() + 10'000);
    t.set_objective_value(accuracies.back());
  }
  v1::ParamAssignment* a = t.add_params();
  a->set_name("lr");
  a->mutable_value()->set_double_value(lr);
  a = t.add_params();
  a->set_name("opt");
  a->mutable_value()->set_string_value(opt);
  for (size_t i = 0; i < accuracies.size(); ++i) {
    v1::EpochMetrics* e = t.add_epochs();
    e->set_epoch(static_cast<int>(i) + 1);
    e->set_val_accuracy(accuracies[i]);
    e->set_train_loss(1.0 / (i + 1));
  }
  return t;
}

db::StoredStudy Stored(const v1::Study& study, const std::vector<v1::Trial>& trials) {
  db::StoredStudy stored;
  stored.study = study;
  int64_t id = 1;
  for (const v1::Trial& t : trials) stored.trials.push_back({id++, t, "", 0, ""});
  return stored;
}

int Count(const std::string& text, const std::string& pattern) {
  std::regex re(pattern);
  return static_cast<int>(
      std::distance(std::sregex_iterator(text.begin(), text.end(), re), std::sregex_iterator()));
}

TEST_CASE("Parallel coordinates draw one line per trial with an objective, the best on top",
          "[dashboard][charts]") {
  v1::Study study = MakeStudy("pc");
  study.set_best_trial_number(1);
  std::vector<v1::Trial> trials = {
      MakeTrial(0, 1e-4, "adam", v1::TRIAL_STATE_COMPLETE, {0.5, 0.6}),
      MakeTrial(1, 1e-3, "sgd", v1::TRIAL_STATE_COMPLETE, {0.7, 0.9}),
      MakeTrial(2, 1e-2, "adam", v1::TRIAL_STATE_RUNNING, {}),  // no value yet: no line
  };
  const std::string svg = server::ParallelCoordinatesFigure(study, trials).svg;
  CHECK(Count(svg, "<polyline class=\"line trial-") == 2);
  CHECK(Count(svg, "class=\"line trial-1 complete best\"") == 1);
  CHECK(svg.find("trial-2") == std::string::npos);
  // The best line is drawn last (on top).
  CHECK(svg.substr(svg.rfind("<polyline"), 60).find("best") != std::string::npos);
  // On the log axis (1e-4 .. 1e-2) 1e-3 lies halfway: trial 1's first point is at the axis middle,
  // trial 0's at its bottom. Axis 0 spans y 48 .. 304 (top margin 48, height 360 - 48 - 56).
  std::smatch m;
  REQUIRE(std::regex_search(svg, m,
                            std::regex("trial-1 complete best\" points=\"([0-9.]+),([0-9.]+)")));
  CHECK(std::stod(m[2]) == Approx(48 + 256 * 0.5).margin(0.1));
  REQUIRE(std::regex_search(svg, m, std::regex("trial-0 complete\" points=\"([0-9.]+),([0-9.]+)")));
  CHECK(std::stod(m[2]) == Approx(304).margin(0.1));
  // The categorical axis labels its choices; the objective axis its range.
  CHECK(svg.find(">adam</text>") != std::string::npos);
  CHECK(svg.find(">sgd</text>") != std::string::npos);
  CHECK(svg.find("val_accuracy (max)") != std::string::npos);
}

TEST_CASE("Parallel coordinates of a study without values say so", "[dashboard][charts]") {
  const std::string svg = server::ParallelCoordinatesFigure(MakeStudy("empty"), {}).svg;
  CHECK(svg.find("no search trial has a value yet") != std::string::npos);
  CHECK(svg.find("<polyline") == std::string::npos);
}

TEST_CASE("The study document has its summary, trials, charts and ETA", "[dashboard][views]") {
  v1::Study study = MakeStudy("view");
  study.set_best_trial_number(1);
  study.set_best_objective_value(0.9);
  std::vector<v1::Trial> trials = {
      MakeTrial(0, 1e-4, "adam", v1::TRIAL_STATE_COMPLETE, {0.5, 0.6}),
      MakeTrial(1, 1e-3, "sgd", v1::TRIAL_STATE_COMPLETE, {0.7, 0.9}),
      MakeTrial(2, 1e-2, "adam", v1::TRIAL_STATE_RUNNING, {0.4}),
  };
  const db::StoredStudy stored = Stored(study, trials);
  const absl::Time now = absl::FromUnixMillis(1'000'000 + 60'000);
  const nlohmann::json view = dashboard::StudyView(stored, now);
  CHECK(view["name"] == "view");
  CHECK(view["state"] == "searching");
  CHECK(view["budget_used"] == 2);
  CHECK(view["budget_total"] == 6);
  CHECK(view["running"] == 1);
  CHECK(view["best_trial"] == 1);
  CHECK(view["elapsed_seconds"].get<double>() == Approx(60));
  // Trial 2 has run past the 10 s mean, so both lanes are free now; 3 pending trials of 10 s, 2 at
  // a time: 20 s; the final stage (train, made reuse for the built-in trainer) only evaluates.
  // server/report/study_progress.h.
  CHECK(view["eta_seconds"].get<double>() == Approx(20));
  REQUIRE(view["trials"].size() == 3);
  CHECK(view["trials"][1]["params_text"]["opt"] == "sgd");
  CHECK(view["trials"][1]["epochs"][1]["val_accuracy"].get<double>() == Approx(0.9));
  CHECK(view["trials"][2]["state"] == "running");
  std::vector<std::string> ids;
  for (const nlohmann::json& c : view["charts"]) {
    ids.push_back(c["id"]);
    CHECK(c["svg"].get<std::string>().rfind("<svg", 0) == 0);  // no XML declaration in a page
  }
  std::vector<std::string> expected = {"history",  "curves-train_loss", "curves-val_accuracy",
                                       "parallel", "slice-lr",          "slice-opt"};
  expected.push_back("importance");
  CHECK(view["importance"]["trials_used"] == 2);
  CHECK(ids == expected);
  CHECK(view["final"].is_null());
  // The summary in the list is the same.
  const nlohmann::json list = dashboard::StudiesView({stored}, now);
  CHECK(list["studies"][0]["eta_seconds"] == view["eta_seconds"]);
}

TEST_CASE("Learning curves of many trials drop markers and legend entries", "[dashboard][charts]") {
  v1::Study study = MakeStudy("many");
  std::vector<v1::Trial> trials;
  for (int n = 0; n < 40; ++n) {
    trials.push_back(MakeTrial(n, 1e-3, "adam", v1::TRIAL_STATE_COMPLETE, {0.5, 0.6, 0.7}));
  }
  const std::string many = server::MetricCurvesFigure(study, trials, "val_accuracy").svg;
  CHECK(Count(many, "<polyline class=\"line") == 40);
  CHECK(many.find("class=\"point") == std::string::npos);
  trials.resize(5);
  const std::string few = server::MetricCurvesFigure(study, trials, "val_accuracy").svg;
  CHECK(Count(few, "class=\"point") == 15);
}

TEST_CASE("Charts of more than 100 trials draw them as a few paths naming their trials",
          "[dashboard][charts]") {
  v1::Study study = MakeStudy("large");
  std::vector<v1::Trial> trials;
  for (int n = 0; n < 150; ++n) {
    const double last = 0.5 + n / 1000.0;
    trials.push_back(MakeTrial(n, 1e-3 * (1 + n % 5), n % 2 ? "adam" : "sgd",
                               v1::TRIAL_STATE_COMPLETE, {0.4, 0.45, last}));
  }
  study.set_best_trial_number(149);
  study.set_best_objective_value(0.649);
  // Every trial named exactly once across the paths' data-ids.
  auto ids = [](const std::string& svg) {
    std::multiset<int> out;
    std::regex re("data-ids=\"([0-9 ]*)\"");
    for (auto it = std::sregex_iterator(svg.begin(), svg.end(), re); it != std::sregex_iterator();
         ++it) {
      std::istringstream in((*it)[1].str());
      for (int id; in >> id;) out.insert(id);
    }
    return out;
  };
  const std::string curves = server::MetricCurvesFigure(study, trials, "val_accuracy").svg;
  CHECK(curves.find("<polyline class=\"line") == std::string::npos);
  CHECK(Count(curves, "<path class=\"line complete\"") == 10);  // one per palette colour
  std::multiset<int> curve_ids = ids(curves);
  CHECK(curve_ids.size() == 150);
  CHECK(std::set<int>(curve_ids.begin(), curve_ids.end()).size() == 150);

  const std::string parallel = server::ParallelCoordinatesFigure(study, trials).svg;
  CHECK(Count(parallel, "<polyline class=\"line") == 1);  // the best keeps its own line, last
  CHECK(Count(parallel, "class=\"line trial-149 complete best\"") == 1);
  CHECK(ids(parallel).size() == 149);
  CHECK(ids(parallel).count(149) == 0);

  const std::string history = server::OptimizationHistoryFigure(study, trials).svg;
  CHECK(Count(history, "class=\"point best") == 1);  // the best trial's own diamond
  CHECK(Count(history, "<path class=\"points complete\"") == 1);
  CHECK(ids(history).size() == 150);

  // At 100 trials the charts are drawn one element per trial, as before.
  trials.resize(100);
  CHECK(Count(server::ParallelCoordinatesFigure(study, trials).svg, "<polyline class=\"line") ==
        100);
  CHECK(Count(server::OptimizationHistoryFigure(study, trials).svg, "class=\"point complete") ==
        100);
}

TEST_CASE("The frozen page keeps a study's text from ending its script", "[dashboard][page]") {
  v1::Study study = MakeStudy("</script><script>alert(1)</script>");
  const db::StoredStudy stored = Stored(study, {});
  const absl::Time now = absl::FromUnixMillis(2'000'000);
  const std::string page = dashboard::FrozenPage(dashboard::StudiesView({stored}, now),
                                                 dashboard::StudyView(stored, now), "now");
  // Only the page's own two scripts end: the name's "</script>" is written "<\/script>".
  CHECK(Count(page, "</script>") == 2);
  CHECK(page.find("<\\/script><script>alert(1)<\\/script>") != std::string::npos);
  CHECK(page.find("window.HPSEARCH_FROZEN = ") != std::string::npos);
  CHECK(page.find("<!--HPSEARCH_SCRIPT-->") == std::string::npos);
  CHECK(page.find("<script src=") == std::string::npos);
  // The live page loads the script instead.
  CHECK(dashboard::LivePage("dashboard.js").find("<script src=\"dashboard.js\"></script>") !=
        std::string::npos);
}

}  // namespace
}  // namespace hpsearch
