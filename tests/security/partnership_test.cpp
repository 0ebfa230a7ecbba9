// The security tests' partnership itself: every holder has a token, every door is open to its partner,
// and opt-in holds before anyone consents (the rule files build on this).
#include "tests/security/common.hpp"

namespace fhirgate::testing::security {
namespace {

TEST_CASE("security partnership: the GP's patient is its own until the patient consents") {
  Partnership p;
  auto gp = p.client("gp-practice");
  auto trust = p.client("acute-trust");
  const std::string id = create_patient(*gp, "Fixture", nhs_number(1));
  CHECK(gp->get("/Patient/" + id).status == 200);
  CHECK(trust->get("/Patient/" + id).status == 404);
  record_consent(*gp, id, permit("acute-trust"));
  CHECK(trust->get("/Patient/" + id).status == 200);
  CHECK(msa(send_v2(p.mllp_port(0), adt("A01", "FIX1", "GP1", nhs_number(2), "Viamllp"))) == "AA|FIX1");
  CHECK(audit_intact(p));
}

}  // namespace
}  // namespace fhirgate::testing::security
