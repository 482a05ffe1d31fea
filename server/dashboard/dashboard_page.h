// The dashboard's page: one HTML document and one script of the project's own
// (server/dashboard/assets/, compiled in by embed_assets.cmake), and the self-contained
// report.html made of both with the data inlined.
//
// Thread-safety: constants and pure functions.
#pragma once

#include <string>

#include "nlohmann/json.hpp"

namespace hpsearch::dashboard {

extern const char kDashboardHtml[];    // has the marker <!--HPSEARCH_SCRIPT--> where scripts go
extern const char kDashboardScript[];  // polls api/studies and api/study?id=ID

// The live page: kDashboardHtml loading the script from `script_url`.
std::string LivePage(const std::string& script_url);

// report.html: the page with the script inlined and `studies` (StudiesView) and `study`
// (StudyView) frozen into it, so it opens from a file and fetches nothing. `written` says when.
std::string FrozenPage(const nlohmann::json& studies, const nlohmann::json& study,
                       const std::string& written);

}  // namespace hpsearch::dashboard
