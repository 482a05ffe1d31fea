#include "server/report/study_progress.h"

#include <algorithm>
#include <functional>
#include <limits>
#include <queue>

#include "server/study_file/study_view.h"

namespace hpsearch::server {
namespace {

std::optional<double> DurationSeconds(const v1::Trial& t) {
  if (t.started_unix_ms() <= 0 || t.ended_unix_ms() < t.started_unix_ms()) return std::nullopt;
  return (t.ended_unix_ms() - t.started_unix_ms()) / 1000.0;
}

double RunningForSeconds(const v1::Trial& t, absl::Time now) {
  if (t.started_unix_ms() <= 0) return 0;
  return std::max(0.0, absl::ToDoubleSeconds(now - absl::FromUnixMillis(t.started_unix_ms())));
}

}  // namespace

std::optional<double> TrialRemainingSeconds(const v1::StudySpec& spec, const v1::Trial& trial,
                                            absl::Time now) {
  if (trial.state() != v1::TRIAL_STATE_RUNNING) return std::nullopt;
  if (trial.has_progress() && trial.progress().total_steps() > 0 &&
      (trial.progress().eta_seconds() > 0 || trial.progress().step() > 0)) {
    const v1::TrialProgress& p = trial.progress();
    // The worker's ETA was right when the coordinator received it; time has passed since.
    const double age =
        p.updated_unix_ms() > 0
            ? std::max(0.0, absl::ToDoubleSeconds(now - absl::FromUnixMillis(p.updated_unix_ms())))
            : 0.0;
    return std::max(0.0, p.eta_seconds() - age);
  }
  if (trial.epochs_size() == 0) return std::nullopt;
  const v1::EpochMetrics& e = trial.epochs(trial.epochs_size() - 1);
  if (e.has_last() && e.last()) return 0.0;
  const std::optional<int> last = TrialLastEpoch(spec, trial.params());
  if (!last || e.epoch() <= 0 || e.wall_time_seconds() <= 0) return std::nullopt;
  return std::max(0.0, e.wall_time_seconds() / e.epoch() * (*last - e.epoch()));
}

StudyProgress EstimateStudyProgress(const v1::Study& study,
                                    const std::vector<const v1::Trial*>& trials, absl::Time now) {
  const v1::StudySpec& spec = study.spec();
  const StudyBudget budget = BudgetOf(spec);
  StudyProgress out;
  out.search_budget = budget.n_trials;
  if (study.created_unix_ms() > 0) {
    const absl::Time end = StudyStateEnded(study.state()) && study.ended_unix_ms() > 0
                               ? absl::FromUnixMillis(study.ended_unix_ms())
                               : now;
    out.elapsed_seconds =
        std::max(0.0, absl::ToDoubleSeconds(end - absl::FromUnixMillis(study.created_unix_ms())));
  }

  double ended_seconds = 0;
  int ended_timed = 0;
  std::optional<double> best_seconds;
  const v1::Trial* final_trial = nullptr;
  std::vector<const v1::Trial*> running;
  for (const v1::Trial* t : trials) {
    if (t->kind() == v1::TRIAL_KIND_FINAL) {
      final_trial = t;
      continue;
    }
    if (TrialStateEnded(t->state())) {
      ++out.search_ended;
      if (std::optional<double> d = DurationSeconds(*t)) {
        ended_seconds += *d;
        ++ended_timed;
        if (study.has_best_trial_number() && t->number() == study.best_trial_number()) {
          best_seconds = d;
        }
      }
    } else if (t->state() == v1::TRIAL_STATE_RUNNING) {
      ++out.search_running;
      running.push_back(t);
    }
  }
  if (StudyStateEnded(study.state())) return out;

  // Each running trial's remaining time; those that cannot tell take the mean less their time so
  // far.
  std::vector<std::optional<double>> remaining;
  double projected_seconds = 0;
  int projected = 0;
  for (const v1::Trial* t : running) {
    remaining.push_back(TrialRemainingSeconds(spec, *t, now));
    if (remaining.back()) {
      projected_seconds += RunningForSeconds(*t, now) + *remaining.back();
      ++projected;
    }
  }
  std::optional<double> mean;
  if (ended_timed > 0) {
    mean = ended_seconds / ended_timed;
  } else if (projected > 0) {
    mean = projected_seconds / projected;
  }

  double search_left = 0;
  if (study.state() == v1::STUDY_STATE_SEARCHING) {
    const int pending = std::max(0, budget.n_trials - out.search_ended - out.search_running);
    // Lanes free up as running trials end; each pending trial takes the first free lane.
    std::priority_queue<double, std::vector<double>, std::greater<double>> lanes;
    for (size_t i = 0; i < running.size(); ++i) {
      std::optional<double> left = remaining[i];
      if (!left && mean) left = std::max(0.0, *mean - RunningForSeconds(*running[i], now));
      if (!left) return out;
      lanes.push(*left);
    }
    while (static_cast<int>(lanes.size()) < std::max(1, budget.parallelism)) lanes.push(0);
    // A time limit stops new trials from starting once it has passed; those running finish.
    const double start_before =
        budget.time_limit > absl::ZeroDuration()
            ? std::max(0.0, absl::ToDoubleSeconds(budget.time_limit) - out.elapsed_seconds)
            : std::numeric_limits<double>::infinity();
    for (int i = 0; i < pending; ++i) {
      if (!mean) return out;
      const double free_at = lanes.top();
      if (free_at >= start_before) break;
      lanes.pop();
      lanes.push(free_at + *mean);
    }
    while (!lanes.empty()) {
      search_left = std::max(search_left, lanes.top());
      lanes.pop();
    }
  }

  double final_left = 0;
  if (FinalStageEnabled(spec)) {
    if (final_trial != nullptr && TrialStateEnded(final_trial->state())) {
      final_left = 0;
    } else if (final_trial != nullptr && final_trial->state() == v1::TRIAL_STATE_RUNNING) {
      std::optional<double> left = TrialRemainingSeconds(spec, *final_trial, now);
      const std::optional<double> whole = best_seconds ? best_seconds : mean;
      if (!left && whole) left = std::max(0.0, *whole - RunningForSeconds(*final_trial, now));
      if (!left) return out;
      final_left = *left;
    } else if (FinalRetrainOn(spec, /*source_model_stored=*/true) == v1::RETRAIN_ON_REUSE) {
      final_left = 0;  // it only evaluates the best trial's stored model: short beside training
    } else {
      // The final trial retrains the best search trial: about as long as that trial took.
      const std::optional<double> whole = best_seconds ? best_seconds : mean;
      if (!whole) return out;
      final_left = *whole;
    }
  }
  out.eta_seconds = search_left + final_left;
  return out;
}

}  // namespace hpsearch::server
