// OptionReport: where a sampler kind's option checks (sampler_kinds.h) report what they find, under
// the study file's dotted field names ("sampler.gamma", "search_space.lr.step"). The study
// validator adapts its own context to it, so that sampling/ needs nothing of the study file.
#pragma once

#include <string>

namespace hpsearch::server {

class OptionReport {
 public:
  virtual ~OptionReport() = default;
  // A setting the study cannot run with; `message` says why and how to fix it.
  virtual void Error(const std::string& field, const std::string& message) = 0;
  // A setting that runs but probably not as meant.
  virtual void Warning(const std::string& field, const std::string& message) = 0;
  // True once any error has been reported (by any section of the validation).
  virtual bool has_errors() const = 0;
};

}  // namespace hpsearch::server
