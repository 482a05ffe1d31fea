#include "server/dashboard/dashboard_page.h"

#include <string_view>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"

namespace hpsearch::dashboard {
namespace {

constexpr std::string_view kScriptMarker = "<!--HPSEARCH_SCRIPT-->";

std::string WithScripts(const std::string& scripts) {
  std::string page = kDashboardHtml;
  const size_t at = page.find(kScriptMarker);
  if (at == std::string::npos) return page + scripts;
  return page.replace(at, kScriptMarker.size(), scripts);
}

// JSON inside <script>: "</" and the HTML comment openers must not end or confuse the element.
std::string ScriptSafe(const std::string& json) {
  return absl::StrReplaceAll(json, {{"</", "<\\/"}, {"<!--", "<\\!--"}});
}

}  // namespace

std::string LivePage(const std::string& script_url) {
  return WithScripts(absl::StrCat("<script src=\"", script_url, "\"></script>"));
}

std::string FrozenPage(const nlohmann::json& studies, const nlohmann::json& study,
                       const std::string& written) {
  nlohmann::json frozen{{"studies", studies}, {"study", study}, {"written", written}};
  return WithScripts(absl::StrCat("<script>window.HPSEARCH_FROZEN = ", ScriptSafe(frozen.dump()),
                                  ";</script>\n<script>", ScriptSafe(kDashboardScript),
                                  "</script>"));
}

}  // namespace hpsearch::dashboard
