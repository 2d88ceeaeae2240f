# Test registration: cmocka unit tests of the pure modules, and integration tests against a
# throwaway PostgreSQL that the "pg" fixture starts and always stops.

file(GLOB UNIT_TESTS CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/tests/unit/test_*.c)
foreach(src ${UNIT_TESTS})
  get_filename_component(name ${src} NAME_WE)
  add_executable(${name} ${src})
  target_link_libraries(${name} PRIVATE payremind_core PkgConfig::CMOCKA)
  add_test(NAME unit.${name} COMMAND ${name})
  set_tests_properties(unit.${name} PROPERTIES LABELS unit TIMEOUT 120)
endforeach()

set(PR_TEST_STATE ${CMAKE_BINARY_DIR}/test-state)
add_test(NAME fixture.pg_start
  COMMAND ${CMAKE_SOURCE_DIR}/tests/pg_fixture.sh start ${PR_TEST_STATE} $<TARGET_FILE:payremindctl>)
add_test(NAME fixture.pg_stop
  COMMAND ${CMAKE_SOURCE_DIR}/tests/pg_fixture.sh stop ${PR_TEST_STATE})
set_tests_properties(fixture.pg_start PROPERTIES FIXTURES_SETUP pg TIMEOUT 120)
set_tests_properties(fixture.pg_stop PROPERTIES FIXTURES_CLEANUP pg TIMEOUT 60)

find_program(PR_PYTHON NAMES python3 PATHS /usr/bin NO_DEFAULT_PATH)
file(GLOB INTEGRATION_TESTS CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/tests/integration/test_*.py)
# Long tests (a real browser, simulated outages, simulated days) carry the label `long`: scripts/test.sh runs them once, not again under
# the sanitizers.
set(PR_LONG_TESTS test_browser test_outage test_simday)
foreach(src ${INTEGRATION_TESTS})
  get_filename_component(name ${src} NAME_WE)
  set(labels integration)
  if(name IN_LIST PR_LONG_TESTS)
    list(APPEND labels long)
  endif()
  add_test(NAME integration.${name} COMMAND ${PR_PYTHON} ${src})
  set_tests_properties(integration.${name} PROPERTIES
    FIXTURES_REQUIRED pg LABELS "${labels}" TIMEOUT 600
    ENVIRONMENT "PAYREMIND_TEST_STATE=${PR_TEST_STATE};PAYREMIND_BIN=${CMAKE_BINARY_DIR};PAYREMIND_SRC=${CMAKE_SOURCE_DIR}")
endforeach()

# The same behaviours through PgBouncer in transaction mode (database.pooling = "transaction"): claims,
# leases, fenced outcomes, rescue, batch requests, keyword replies, the operators' commands. Run once,
# not again under the sanitizers (label long).
set(PR_POOLED_TESTS test_daemon test_once test_ctl test_operators test_listener)
foreach(name ${PR_POOLED_TESTS})
  add_test(NAME integration.pooled.${name} COMMAND ${PR_PYTHON} ${CMAKE_SOURCE_DIR}/tests/integration/${name}.py)
  set_tests_properties(integration.pooled.${name} PROPERTIES
    FIXTURES_REQUIRED pg LABELS "integration;pooled;long" TIMEOUT 600
    ENVIRONMENT "PAYREMIND_TEST_STATE=${PR_TEST_STATE};PAYREMIND_BIN=${CMAKE_BINARY_DIR};PAYREMIND_SRC=${CMAKE_SOURCE_DIR};PAYREMIND_TEST_POOLER=transaction")
endforeach()

# test_outage stops the shared PostgreSQL for seconds: nothing else may run meanwhile.
set_tests_properties(integration.test_outage PROPERTIES RUN_SERIAL TRUE)

# Simulated days: each about two minutes of real work.
set_tests_properties(integration.test_simday PROPERTIES TIMEOUT 1500)
