#pragma once
#include <cstdint>
#include <vector>

#include "fhir/search_params.hpp"

namespace fhirgate::gateway::store {

// The id each search parameter has in the database's search_param table (stable across restarts and
// configuration changes), indexed by SearchParamDef::key.
class ParamKeys {
 public:
  explicit ParamKeys(std::vector<std::int64_t> keys) : keys_(std::move(keys)) {}
  std::int64_t of(const fhir::SearchParamDef& param) const { return keys_[param.key]; }

 private:
  std::vector<std::int64_t> keys_;
};

// The index table that holds a parameter type's rows.
inline const char* index_table(fhir::SearchParamType type) {
  switch (type) {
    case fhir::SearchParamType::string:
      return "idx_string";
    case fhir::SearchParamType::token:
      return "idx_token";
    case fhir::SearchParamType::date:
      return "idx_date";
    case fhir::SearchParamType::reference:
      return "idx_reference";
    case fhir::SearchParamType::uri:
      return "idx_uri";
  }
  return "idx_string";
}

}  // namespace fhirgate::gateway::store
