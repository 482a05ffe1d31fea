// Parameter importance of a study: the share of the objective's variance each searched parameter
// explains on its own, by fANOVA (functional ANOVA, Hutter, Hoos & Leyton-Brown, ICML 2014) on a
// random forest fitted to the complete trials, as Optuna's default FanovaImportanceEvaluator
// computes it (64 trees, max_depth 64, bootstrap samples, first-order importances averaged over the
// trees and normalised to sum to 1).
//
// How parameters enter the forest: a float or int parameter is its value, in log10 space when its
// distribution is log (where the samplers draw it uniformly; Optuna's evaluator stays in linear
// space, so there it judges a log parameter mostly by its top decade); a categorical parameter is
// its choice's index (splits between indices; each choice weighs the same in the marginals).
// bench/importance_bench compares the two on the same trials: without log parameters they agree to
// about 0.001. The marginal of a parameter is taken over the search
// space's box (the spec's bounds, widened to any stored value outside them).
//
// Which trials count: search trials that are COMPLETE with a finite objective value. A trial that
// lacks a searched parameter, or whose value does not fit its distribution (a string for a float,
// a choice not in the list), is left out and counted in `skipped_trials`.
//
// Output is a function of the input and ImportanceOptions::seed alone (no clock, no global random
// state, no threads), so the same study gives the same numbers on every machine.
//
// Thread-safety: pure functions; distinct calls may run concurrently.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "hpsearch/v1/study.pb.h"
#include "hpsearch/v1/trial.pb.h"

namespace hpsearch::server {

struct ImportanceOptions {
  // Trees in the forest. More trees give steadier numbers at linear cost (Optuna: 64).
  int n_trees = 64;
  // Depth limit of each tree (Optuna: 64, i.e. grown until its leaves are pure for any study).
  int max_depth = 64;
  // A node with fewer trials is a leaf (sklearn's min_samples_split; Optuna: 2).
  int min_samples_split = 2;
  // Each side of a split keeps at least this many trials (sklearn's min_samples_leaf; Optuna: 1).
  int min_samples_leaf = 1;
  // Seeds the bootstrap samples and the order features are tried in. Optuna draws a fresh seed by
  // default; hpsearch fixes it so a report written twice is identical.
  uint64_t seed = 0;
};

struct ParameterImportance {
  std::string name;
  // In [0, 1]; the importances of a study sum to 1 (or are all 0 when the objective does not vary
  // over the trials used). A parameter that took one value in every trial used gets exactly 0.
  double importance = 0;
};

struct StudyImportance {
  // Every search-space parameter once, the most important first; ties keep search-space order.
  std::vector<ParameterImportance> parameters;
  int trials_used = 0;     // complete search trials the forest was fitted to
  int skipped_trials = 0;  // complete search trials left out (a missing or ill-typed value)
};

// The importance of each parameter of `spec`'s search space over `trials` (a study's trials as the
// results store loads them; other kinds and states are ignored).
// Errors: FailedPrecondition when fewer than 2 trials can be used (the message says how many
// complete trials there are and how many were skipped); InvalidArgument for options out of range
// (n_trees, max_depth, min_samples_split, min_samples_leaf must be >= 1, min_samples_split >= 2).
// An empty search space gives an empty list.
absl::StatusOr<StudyImportance> ComputeParameterImportance(const v1::StudySpec& spec,
                                                           const std::vector<v1::Trial>& trials,
                                                           const ImportanceOptions& options = {});

}  // namespace hpsearch::server
