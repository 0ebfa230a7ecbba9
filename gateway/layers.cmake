# The gateway's layers: which folders each folder's sources may include from (besides fhir/ and mappers/,
# the pure layers below all of them). The build refuses an include that crosses them: the check runs as a
# build step before the gateway's libraries compile (gateway/CMakeLists.txt), and in script mode
# (cmake -DSOURCE_DIR=... -P gateway/layers.cmake) checks every file under gateway/.
#
#   common, config                   leaves
#   store                            the database; never net/, pipeline/ or anything above
#   ops                              metrics, logs, housekeeping: nothing above the store
#   security, audit                  the gate and the audit trail, over the store
#   net                              listeners, sessions, outbound transports: drives net::Job, knows no pipeline
#   routing                          router and delivery workers (outbound transports, the gate, audit)
#   pipeline, stages                 the Exchange, chains, the one write and the one read
#   inbound, rest                    the entry points
#   server, cli                      wiring and commands
set(FHIRGATE_LAYER_common common)
set(FHIRGATE_LAYER_config config common)
set(FHIRGATE_LAYER_store store common)
set(FHIRGATE_LAYER_ops ops store config common)
set(FHIRGATE_LAYER_security security store config common)
set(FHIRGATE_LAYER_audit audit store common)
set(FHIRGATE_LAYER_net net store config common)
set(FHIRGATE_LAYER_routing routing net security audit store config common)
set(FHIRGATE_LAYER_pipeline pipeline net security audit store ops config common)
set(FHIRGATE_LAYER_stages stages pipeline routing net security audit store ops config common)
set(FHIRGATE_LAYER_inbound inbound stages pipeline routing net security audit store ops config common)
set(FHIRGATE_LAYER_rest rest inbound stages pipeline routing net security audit store ops config common)
set(FHIRGATE_LAYER_server server rest inbound stages pipeline routing net security audit store ops config common)
set(FHIRGATE_LAYER_cli cli server rest inbound stages pipeline routing net security audit store ops config common)
set(FHIRGATE_LAYERS common config store ops security audit net routing pipeline stages inbound rest server cli)

if(CMAKE_SCRIPT_MODE_FILE)
  cmake_policy(SET CMP0057 NEW)
  set(problems "")
  foreach(layer IN LISTS FHIRGATE_LAYERS)
    file(GLOB_RECURSE files "${SOURCE_DIR}/gateway/${layer}/*.cpp" "${SOURCE_DIR}/gateway/${layer}/*.hpp")
    foreach(file IN LISTS files)
      file(STRINGS "${file}" includes REGEX "^#include \"gateway/")
      foreach(line IN LISTS includes)
        string(REGEX MATCH "gateway/([a-z_]+)/" _ "${line}")
        set(folder "${CMAKE_MATCH_1}")
        if(NOT folder IN_LIST FHIRGATE_LAYER_${layer})
          file(RELATIVE_PATH where "${SOURCE_DIR}" "${file}")
          string(APPEND problems "\n  ${where}: ${line} (gateway/${layer}/ may include only: ${FHIRGATE_LAYER_${layer}})")
        endif()
      endforeach()
    endforeach()
  endforeach()
  # A gateway source outside every layer's folder belongs nowhere.
  file(GLOB strays "${SOURCE_DIR}/gateway/*.cpp" "${SOURCE_DIR}/gateway/*.hpp")
  foreach(file IN LISTS strays)
    string(APPEND problems "\n  ${file}: a gateway source outside the layers' folders")
  endforeach()
  if(problems)
    message(FATAL_ERROR "gateway layers: includes that cross the layers (gateway/layers.cmake):${problems}")
  endif()
  if(STAMP)
    file(TOUCH "${STAMP}")
  endif()
endif()
