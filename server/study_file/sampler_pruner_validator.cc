// Validation of the sampler and pruner options: defaults filled in, ranges checked, options of
// another type refused (so a typo in `type` is never silently ignored), and the combinations that
// cannot work (a grid over a continuous float, ASHA over a searched number of epochs) named with
// their fix.
#include <algorithm>
#include <cmath>
#include <functional>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "server/sampling/sampler_kinds.h"
#include "server/study_file/study_view.h"
#include "server/study_file/validation_context.h"

namespace hpsearch::server::internal {
namespace {

struct Option {
  std::string name;
  std::string owners;   // the types it belongs to, for the message
  std::string example;  // a type that takes it, for the fix
};

// The sampler table's checks report into the validation context.
class ContextReport : public OptionReport {
 public:
  explicit ContextReport(ValidationContext* ctx) : ctx_(ctx) {}
  void Error(const std::string& field, const std::string& message) override {
    ctx_->Error(field, message);
  }
  void Warning(const std::string& field, const std::string& message) override {
    ctx_->Warning(field, message);
  }
  bool has_errors() const override { return ctx_->has_errors(); }

 private:
  ValidationContext* ctx_;
};

// Errors for every option set in `message` that the chosen type does not take.
void RefuseForeignOptions(const google::protobuf::Message& message, const std::string& section,
                          const std::string& type_name, const std::vector<Option>& options,
                          const std::function<bool(const std::string&)>& allowed,
                          ValidationContext* ctx) {
  const auto* reflection = message.GetReflection();
  for (const Option& option : options) {
    const auto* field = message.GetDescriptor()->FindFieldByName(option.name);
    if (allowed(option.name) || !reflection->HasField(message, field)) continue;
    ctx->Error(section + "." + option.name, "is not an option of the " + type_name + " " + section +
                                                " (it belongs to " + option.owners +
                                                "): remove it, or set `" + section +
                                                ": {type: " + option.example + ", ...}`");
  }
}

// The first epoch at which a pruner can stop a qlora trial, to warn when it is past the last one.
int TrainingEpochs(const v1::StudySpec& spec) {
  if (!UsesBuiltInTrainer(spec)) return 0;  // the runner decides
  for (const v1::ParameterSpec& p : spec.search_space()) {
    if (p.name() == "epochs") return 0;  // varies per trial
  }
  return spec.training().epochs();
}

}  // namespace

void ValidateSampler(v1::StudySpec* spec, ValidationContext* ctx) {
  v1::SamplerSpec* s = spec->mutable_sampler();
  if (s->type() == v1::SAMPLER_TYPE_UNSPECIFIED) s->set_type(v1::SAMPLER_TYPE_RANDOM);
  const SamplerKind* kind = FindSamplerKind(s->type());
  if (kind == nullptr) {
    ctx->Error("sampler.type",
               absl::StrCat("is unknown (", s->type(), "): use ", SamplerKindNames()));
    return;
  }
  // Every option of another kind, refused while this kind does not take it.
  std::vector<Option> options;
  std::vector<std::string> owned_by;
  for (const SamplerKind& other : SamplerKinds()) {
    for (const std::string& name : other.options) {
      auto known = std::find_if(options.begin(), options.end(),
                                [&](const Option& o) { return o.name == name; });
      if (known == options.end()) {
        options.push_back({name, other.name, other.name});
      } else {
        known->owners += std::string(" and ") + other.name;
      }
    }
  }
  RefuseForeignOptions(
      *s, "sampler", kind->name, options,
      [&](const std::string& name) {
        return std::find(kind->options.begin(), kind->options.end(), name) != kind->options.end();
      },
      ctx);
  if (kind->normalize != nullptr) {
    ContextReport report(ctx);
    kind->normalize(spec, &report);
  }
  if (spec->search_space_size() == 0 && spec->enqueue_size() == 0) {
    ctx->Warning("search_space", "is empty: every trial trains the same fixed configuration");
  }
}

void ValidatePruner(v1::StudySpec* spec, ValidationContext* ctx) {
  v1::PrunerSpec* p = spec->mutable_pruner();
  if (p->type() == v1::PRUNER_TYPE_UNSPECIFIED) p->set_type(v1::PRUNER_TYPE_NONE);
  const bool median = p->type() == v1::PRUNER_TYPE_MEDIAN;
  const bool percentile = p->type() == v1::PRUNER_TYPE_PERCENTILE;
  const bool asha = p->type() == v1::PRUNER_TYPE_ASHA;
  const bool curve = median || percentile;
  const std::string type_name = median       ? "median"
                                : percentile ? "percentile"
                                : asha       ? "asha"
                                             : "none";
  RefuseForeignOptions(
      *p, "pruner", type_name,
      {{"n_startup_trials", "median and percentile", "median"},
       {"n_warmup_epochs", "median and percentile", "median"},
       {"interval_epochs", "median and percentile", "median"},
       {"n_min_trials", "median and percentile", "median"},
       {"percentile", "percentile", "percentile"},
       {"min_resource", "asha", "asha"},
       {"reduction_factor", "asha", "asha"},
       {"min_early_stopping_rate", "asha", "asha"}},
      [&](const std::string& name) {
        if (name == "percentile") return percentile;
        if (name == "min_resource" || name == "reduction_factor" ||
            name == "min_early_stopping_rate") {
          return asha;
        }
        return curve;
      },
      ctx);
  if (p->has_max_epochs() && p->max_epochs() < 1) {
    ctx->Error("pruner.max_epochs", "must be at least 1 (the last epoch of a trial)");
  }
  const int epochs = TrainingEpochs(*spec);
  if (curve) {
    if (!p->has_n_startup_trials()) p->set_n_startup_trials(5);
    if (!p->has_n_warmup_epochs()) p->set_n_warmup_epochs(0);
    if (!p->has_interval_epochs()) p->set_interval_epochs(1);
    if (!p->has_n_min_trials()) p->set_n_min_trials(1);
    if (p->n_startup_trials() < 0) ctx->Error("pruner.n_startup_trials", "must be 0 or more");
    if (p->n_warmup_epochs() < 0) ctx->Error("pruner.n_warmup_epochs", "must be 0 or more");
    if (p->interval_epochs() < 1) ctx->Error("pruner.interval_epochs", "must be at least 1");
    if (p->n_min_trials() < 1) ctx->Error("pruner.n_min_trials", "must be at least 1");
    if (epochs > 0 && p->n_warmup_epochs() >= epochs - 1) {
      ctx->Warning("pruner.n_warmup_epochs",
                   absl::StrCat("(", p->n_warmup_epochs(), ") leaves no epoch before the last (",
                                epochs, ") to prune at: lower it"));
    }
  }
  if (percentile) {
    if (!p->has_percentile()) p->set_percentile(25.0);
    if (!(p->percentile() > 0 && p->percentile() < 100)) {
      ctx->Error("pruner.percentile",
                 "must be in (0, 100): the share of trials kept at each epoch, e.g. 25 keeps the "
                 "best quarter (50 is the median pruner)");
    }
  }
  if (asha) {
    if (!p->has_min_resource()) p->set_min_resource(1);
    if (!p->has_reduction_factor()) p->set_reduction_factor(3);
    if (!p->has_min_early_stopping_rate()) p->set_min_early_stopping_rate(0);
    if (p->min_resource() < 1) ctx->Error("pruner.min_resource", "must be at least 1 epoch");
    if (p->reduction_factor() < 2) ctx->Error("pruner.reduction_factor", "must be at least 2");
    if (p->min_early_stopping_rate() < 0) {
      ctx->Error("pruner.min_early_stopping_rate", "must be 0 or more");
    }
    for (const v1::ParameterSpec& param : spec->search_space()) {
      if (param.name() == "epochs") {
        ctx->Error("search_space.epochs",
                   "searching the number of epochs conflicts with the asha pruner, which "
                   "decides how many epochs a trial gets: fix training.epochs (the most a "
                   "trial may train) and remove epochs from search_space, or use the median "
                   "pruner");
      }
    }
    if (epochs > 0 && p->min_resource() >= 1 && p->reduction_factor() >= 2 &&
        p->min_early_stopping_rate() >= 0) {
      double first_rung = p->min_resource();
      for (int i = 0; i < p->min_early_stopping_rate(); ++i) first_rung *= p->reduction_factor();
      if (first_rung >= epochs) {
        ctx->Warning("pruner.min_resource",
                     absl::StrCat("the first rung ends at epoch ", first_rung,
                                  ", not before the last epoch (training.epochs = ", epochs,
                                  "): asha never stops a trial; lower min_resource"));
      }
    }
  }
}

}  // namespace hpsearch::server::internal
