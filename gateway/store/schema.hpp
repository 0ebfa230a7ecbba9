#pragma once
// The database schema: migration i (from 0) takes it from version i to i + 1 (PRAGMA user_version). The
// migrations are the files gateway/store/schema/NNN_*.sql, embedded at build time; add a file for a new
// migration, never edit a released one.
namespace fhirgate::gateway::store {

extern const char* const kSchemaMigrations[];
extern const int kSchemaVersion;  // how many there are

}  // namespace fhirgate::gateway::store
