#pragma once
// Wiring: builds the search parameter table, store, API and server from a Config. Start-up failures
// throw std::runtime_error with a message for the operator.
#include <memory>
#include <string>

#include "fhir/search_params.hpp"
#include "gateway/config.hpp"

namespace fhirgate::gateway {

// Loads the R4 SearchParameter definitions from the profiles folder for the cached types.
fhir::SearchParamRegistry load_search_params(const Config& config);

// Runs the gateway until SIGINT/SIGTERM. Prints the listening URL on stdout once accepting.
int serve(const Config& config);

}  // namespace fhirgate::gateway
