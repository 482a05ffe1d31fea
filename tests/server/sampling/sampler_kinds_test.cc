// The table of sampler kinds: complete, consistent with the proto, and the one source MakeSampler
// and the run options come from.
#include "server/sampling/sampler_kinds.h"

#include <catch2/catch.hpp>

#include <cctype>
#include <set>
#include <string>

#include "server/sampling/tpe_sampler.h"

namespace hpsearch::server {
namespace {

TEST_CASE("Every sampler type of the proto has exactly one row in the table", "[sampling][kinds]") {
  const google::protobuf::EnumDescriptor* types = v1::SamplerType_descriptor();
  std::set<int> rows;
  std::set<std::string> names;
  for (const SamplerKind& kind : SamplerKinds()) {
    CHECK(rows.insert(kind.type).second);
    CHECK(names.insert(kind.name).second);
    REQUIRE(kind.make != nullptr);
    CHECK(kind.make() != nullptr);
    // The study file spells the type as its enum value name, lower-cased, without the prefix.
    std::string enum_name = v1::SamplerType_Name(kind.type);
    std::string spelled = enum_name.substr(std::string("SAMPLER_TYPE_").size());
    for (char& c : spelled) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    CHECK(spelled == kind.name);
    for (const std::string& option : kind.options) {
      INFO(kind.name << "." << option);
      const google::protobuf::FieldDescriptor* field =
          v1::SamplerSpec::descriptor()->FindFieldByName(option);
      REQUIRE(field != nullptr);
      CHECK(field->has_presence());  // "set or not" decides whether another kind refuses it
    }
  }
  for (int i = 0; i < types->value_count(); ++i) {
    const int number = types->value(i)->number();
    if (number == v1::SAMPLER_TYPE_UNSPECIFIED) continue;
    INFO(types->value(i)->name());
    CHECK(rows.count(number) == 1);
  }
  CHECK(SamplerKindNames() == "random, tpe, grid or sobol");
}

TEST_CASE("MakeSampler reads the table and refuses an unknown type with the known names",
          "[sampling][kinds]") {
  v1::StudySpec spec;
  REQUIRE(MakeSampler(spec).ok());  // unspecified: random
  REQUIRE(FindSamplerKind(v1::SAMPLER_TYPE_UNSPECIFIED)->type == v1::SAMPLER_TYPE_RANDOM);
  spec.mutable_sampler()->set_type(static_cast<v1::SamplerType>(99));
  auto sampler = MakeSampler(spec);
  REQUIRE_FALSE(sampler.ok());
  CHECK(std::string(sampler.status().message()).find("random, tpe, grid or sobol") !=
        std::string::npos);
  CHECK(FindSamplerKind(static_cast<v1::SamplerType>(99)) == nullptr);
}

TEST_CASE("Run options: a new submission gets today's, a stored spec what it ran with",
          "[sampling][kinds]") {
  v1::SamplerSpec fresh;
  fresh.set_type(v1::SAMPLER_TYPE_TPE);
  v1::SamplerSpec stored = fresh;
  FillRunOptions(&fresh, /*stored=*/false);
  FillRunOptions(&stored, /*stored=*/true);
  CHECK(fresh.late_weight_window() == kDefaultLateWeightWindow);
  CHECK(fresh.bandwidth_floor() == kDefaultBandwidthFloor);
  CHECK(stored.late_weight_window() == kOptunaWeightWindow);
  CHECK(stored.bandwidth_floor() == 1.0);
  v1::SamplerSpec random;
  random.set_type(v1::SAMPLER_TYPE_RANDOM);
  FillRunOptions(&random, false);
  CHECK_FALSE(random.has_late_weight_window());
}

}  // namespace
}  // namespace hpsearch::server
